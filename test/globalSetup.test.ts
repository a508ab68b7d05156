// The run's leak check finds a process by the marker in its environment, even one its parent no longer knows about.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { markedProcesses } from './globalSetup';

describe('the test run’s leak check', () => {
  it('names a process that carries the marker, and stops naming it once it is gone', async () => {
    const marker = `GW_TEST_RUN=leak-check-${randomBytes(4).toString('hex')}`;
    const [name, value] = marker.split('=') as [string, string];
    // Detached and unreferenced, as an orphaned nginx worker would be: nothing but the marker ties it to us.
    const child = spawn('sleep', ['30'], { env: { PATH: process.env.PATH ?? '', [name]: value }, detached: true, stdio: 'ignore' });
    child.unref();
    const exited = new Promise((done) => child.once('exit', done));
    try {
      expect(markedProcesses(marker)).toEqual([{ pid: child.pid, command: 'sleep 30' }]);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    expect(markedProcesses(marker)).toEqual([]);
  });
});
