import { describe, expect, it } from 'vitest';
import { runEchoScenario } from './echoScenario';

describe('dev:echo playground', () => {
  it('passes every step against a fresh in-process gateway', async () => {
    const lines: string[] = [];
    const ok = await runEchoScenario((line) => lines.push(line), { NODE_ENV: 'development' });
    expect(lines.at(-1)).toBe('all steps passed');
    expect(ok).toBe(true);
    expect(lines.filter((l) => l.startsWith('  ok  '))).toHaveLength(8);
  });

});
