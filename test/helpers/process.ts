// Runs the gateway as a real child process (src/server.ts under ts-node), for exit codes, signals, logs and memory.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach } from 'vitest';
import { childEnv, tempDir } from './children';

const root = resolve(__dirname, '..', '..');

export interface GatewayProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Resolves once the given text appears on stdout. */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
  /** The port from the "gateway listening" log line. */
  port(): Promise<number>;
  /** Resident set size of the process, from /proc. */
  rssBytes(): number;
}

const children: ChildProcess[] = [];
afterEach(async () => {
  await Promise.all(
    children.splice(0).map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((done) => c.once('exit', done));
      c.kill('SIGKILL');
      await exited;
    }),
  );
});

/** `nodeArgs` go after ts-node's hook, so they may preload TypeScript modules. */
export function spawnGateway(env: Record<string, string>, nodeArgs: string[] = []): GatewayProcess {
  // An empty working directory, so no developer .env is picked up.
  const cwd = tempDir('gw-proc-');
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', ...nodeArgs, join(root, 'src', 'server.ts')], {
    cwd,
    env: childEnv({ TS_NODE_PROJECT: join(root, 'tsconfig.json'), NODE_PATH: join(root, 'node_modules'), GW_INTERNAL_PORT: '0', ...env }),
  });
  children.push(child);
  let out = '';
  let err = '';
  const listeners: (() => void)[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    out += String(d);
    for (const l of listeners.splice(0)) l();
  });
  child.stderr!.on('data', (d: Buffer) => (err += String(d)));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  const waitFor = (text: string, timeoutMs = 15_000) =>
    new Promise<void>((resolveWait, reject) => {
      const timer = setTimeout(() => reject(new Error(`"${text}" not logged within ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
      const check = () => {
        if (out.includes(text)) {
          clearTimeout(timer);
          resolveWait();
        } else listeners.push(check);
      };
      check();
    });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor,
    async port() {
      await waitFor('gateway listening');
      const line = out.split('\n').find((l) => l.includes('gateway listening'))!;
      return (JSON.parse(line) as { port: number }).port;
    },
    rssBytes() {
      const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1];
      return Number(kb) * 1024;
    },
  };
}
