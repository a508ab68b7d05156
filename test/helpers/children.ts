// What every process a test starts must carry, so the run's teardown (test/globalSetup.ts) can find the ones left
// behind: the run's marker and its temporary folder. Processes spawned with the parent's environment inherit both;
// spawns that build an environment from scratch start from `childEnv`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { RUN_MARKER } from '../globalSetup';

/** A minimal environment for a child process: PATH, the run's marker and temporary folder, then `extra`. */
export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
  for (const name of [RUN_MARKER, 'TMPDIR']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}

const made: string[] = [];
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary folder, removed when the test file ends (and reported by the teardown if it is not). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
