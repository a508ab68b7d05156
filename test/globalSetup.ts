// Global setup and teardown of `yarn test`. Every process a test starts carries the run's marker (inherited, or
// through helpers/children.ts), and every temporary folder lives in the run's own TMPDIR. When the run ends, a
// process still alive with the marker, or anything left in that folder, fails the run, named; both are then
// cleaned up so one broken test does not leak into the next run.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

/** The variable that marks every process of one test run. */
export const RUN_MARKER = 'GW_TEST_RUN';

/** Caches tools keep in TMPDIR on purpose (ts-node's compile cache); removed with the run's folder, not leaks. */
const TOOL_CACHES = /^v8-compile-cache-\d+$/;

interface Leftover {
  pid: number;
  command: string;
}

/** Processes other than this one whose environment carries `marker`. */
export function markedProcesses(marker: string): Leftover[] {
  const found: Leftover[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker)) continue;
      const command = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim();
      // vitest's own workers carry the marker too (they inherit it); they are not the tests' children.
      if (command.includes('vitest')) continue;
      found.push({ pid, command: command || `[${readFileSync(`/proc/${pid}/comm`, 'latin1').trim()}]` });
    } catch {
      // The process ended while we looked, or is not ours to read.
    }
  }
  return found;
}

export default function setup(): () => Promise<void> {
  const runDir = mkdtempSync(join(tmpdir(), 'gw-test-run-'));
  const marker = `${RUN_MARKER}=${basename(runDir)}`;
  process.env[RUN_MARKER] = basename(runDir);
  process.env.TMPDIR = runDir;

  return async () => {
    const problems: string[] = [];
    // A process may still be on its way out (a SIGKILL not yet reaped): give stragglers a moment.
    let alive = markedProcesses(marker);
    for (let i = 0; i < 20 && alive.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      alive = markedProcesses(marker);
    }
    for (const p of alive) {
      problems.push(`process left running: pid ${p.pid}: ${p.command}`);
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const name of readdirSync(runDir)) {
      if (!TOOL_CACHES.test(name)) problems.push(`temporary file or folder left behind: ${join(runDir, name)}`);
    }
    rmSync(runDir, { recursive: true, force: true });
    if (problems.length === 0) return;
    // vitest reports an error thrown here but keeps its exit code: set the code ourselves so the run fails.
    process.exitCode = 1;
    throw new Error(`the test run did not clean up after itself:\n  ${problems.join('\n  ')}`);
  };
}
