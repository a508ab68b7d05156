// Small process helpers shared by the benchmarks and the test suites: CPU seconds (user + system) and resident memory
// from /proc, and a free loopback port for a server to start on.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const TICKS_PER_SECOND = 100;

function statCpuSeconds(file: string): number {
  const fields = readFileSync(file, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** CPU of the whole process: every thread (the main one, V8's GC helpers and compilers, libuv's pool). */
export function cpuSeconds(pid: number | 'self' = 'self'): number {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/** CPU of the process's main thread only (the JavaScript event loop). */
export function mainThreadCpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/task/${pid}/stat`);
}

/** CPU seconds one core spent busy (user, nice, system, irq, softirq, steal: /proc/stat), whatever ran there. */
export function coreBusySeconds(core: number): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${core} `));
  if (!line) throw new Error(`no cpu${core} in /proc/stat`);
  const [user, nice, system, , , irq, softirq, steal] = line.split(/\s+/).slice(1).map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / TICKS_PER_SECOND;
}

export function rssBytes(pid: number | 'self' = 'self'): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;
}

/** A loopback port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
