// A real Nginx (Debian's package) in front of a test gateway, running the project's own template rendered by the
// project's own render.sh, with a certificate from the project's gen-dev-cert.sh. Without the binary the suite
// skips locally and fails under CI=true.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { childEnv, tempDir } from './children';
import { freePort } from './redis';

const root = resolve(__dirname, '..', '..');
export const NGINX_TEMPLATE = join(root, 'infra', 'nginx', 'nginx.conf.template');
// Debian installs nginx in /usr/sbin, which is not on every PATH.
const NGINX_BINARY = existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
export const hasNginx = spawnSync(NGINX_BINARY, ['-v']).status === 0;

if (!hasNginx) {
  if (process.env.CI === 'true') throw new Error(`${NGINX_BINARY} is not installed: CI must install it (scripts/setup.sh --test)`);
  console.warn(`skipping Nginx suites: ${NGINX_BINARY} is not installed (bash scripts/setup.sh --test installs it)`);
}

export interface RunningNginx {
  httpPort: number;
  httpsPort: number;
  /** The self-signed certificate, to trust as a CA. */
  ca: Buffer;
  /** The rendered configuration. */
  config: string;
  stop(): Promise<void>;
}

function run(cmd: string, args: string[], env: Record<string, string> = {}): { status: number | null; output: string } {
  const r = spawnSync(cmd, args, { env: childEnv(env), encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** Pids of the processes whose parent is `pid` (nginx's workers, for its master). */
function childPids(pid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 4 of /proc/<pid>/stat is the parent pid; the command name before it is in parentheses.
      const ppid = Number(readFileSync(`/proc/${entry}/stat`, 'latin1').split(') ')[1]!.split(' ')[1]);
      if (ppid === pid) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Whether `pid` is a live process (not gone, not a zombie waiting to be reaped). */
function alive(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]!.startsWith('Z');
  } catch {
    return false;
  }
}

/**
 * Stops nginx with its own graceful signal (SIGQUIT: workers finish their connections, bounded by the template's
 * worker_shutdown_timeout) and waits until the master and every worker are gone. SIGKILL on the master alone would
 * orphan the workers, still listening.
 */
async function stopNginx(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const workers = childPids(proc.pid!);
  const exited = new Promise((done) => proc.once('exit', done));
  proc.kill('SIGQUIT');
  await exited;
  const deadline = Date.now() + 5000;
  while (workers.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const left = workers.filter(alive);
  for (const pid of left) process.kill(pid, 'SIGKILL');
  if (left.length > 0) throw new Error(`nginx workers outlived their master: ${left.join(', ')}`);
}

function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolveWait, reject) => {
    const attempt = () => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolveWait();
      });
      socket.once('error', () => {
        if (Date.now() > deadline) reject(new Error(`nothing listens on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** Renders the template and checks it with `nginx -t`; returns the paths and ports. */
export async function prepareNginx(upstreamPort: number, httpToHttps: 'on' | 'off' = 'off') {
  const dir = tempDir('gw-nginx-');
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  const cert = run('sh', [join(root, 'infra/nginx/gen-dev-cert.sh'), join(dir, 'certs')]);
  if (cert.status !== 0) throw new Error(`gen-dev-cert.sh failed: ${cert.output}`);
  const confPath = join(dir, 'nginx.conf');
  const rendered = run('sh', [join(root, 'infra/nginx/render.sh'), NGINX_TEMPLATE, confPath], {
    GATEWAY_UPSTREAM: `127.0.0.1:${upstreamPort}`,
    HTTP_PORT: String(httpPort),
    HTTPS_PORT: String(httpsPort),
    HTTP_TO_HTTPS: httpToHttps,
  });
  if (rendered.status !== 0) throw new Error(`render.sh failed: ${rendered.output}`);
  // Only the pid file and the start-up error log are placed by the command line, so several can run at once.
  const globals = ['-e', join(dir, 'error.log'), '-c', confPath];
  const pidDirective = `pid ${join(dir, 'nginx.pid')};`;
  const check = run(NGINX_BINARY, ['-t', ...globals, '-g', pidDirective]);
  return { dir, confPath, httpPort, httpsPort, globals, pidDirective, check, config: readFileSync(confPath, 'utf8'), ca: () => readFileSync(join(dir, 'certs', 'fullchain.pem')) };
}

const running: ChildProcess[] = [];

export async function startNginx(upstreamPort: number, httpToHttps: 'on' | 'off' = 'off'): Promise<RunningNginx> {
  const prepared = await prepareNginx(upstreamPort, httpToHttps);
  if (prepared.check.status !== 0) throw new Error(`nginx -t failed: ${prepared.check.output}`);
  const proc = spawn(NGINX_BINARY, [...prepared.globals, '-g', `daemon off; ${prepared.pidDirective}`], { stdio: 'ignore', env: childEnv() });
  running.push(proc);
  await waitForPort(prepared.httpsPort);
  await waitForPort(prepared.httpPort);
  return {
    httpPort: prepared.httpPort,
    httpsPort: prepared.httpsPort,
    ca: prepared.ca(),
    config: prepared.config,
    stop: () => stopNginx(proc),
  };
}

export async function stopAllNginx(): Promise<void> {
  await Promise.all(running.splice(0).map(stopNginx));
}
