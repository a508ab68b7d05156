// The documents client teams and operators rely on stay in step with the code's tables.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../src/config';
import { CloseCode, ErrorCode, HttpErrorCode } from '../src/types/codes';
import { clientSignals } from '../src/types/signals';

const read = (file: string) => readFileSync(join(__dirname, '..', file), 'utf8');

describe('documentation', () => {
  const protocol = read('docs/protocol.md');

  it('docs/protocol.md has a row for every error code, HTTP error code (with its status) and close code', () => {
    for (const code of Object.keys(ErrorCode)) expect(protocol).toContain(`| \`${code}\` |`);
    for (const [code, { status }] of Object.entries(HttpErrorCode)) expect(protocol).toContain(`| \`${code}\` | ${status} |`);
    for (const { code } of Object.values(CloseCode)) expect(protocol).toMatch(new RegExp(`^\\| ${code} \\|`, 'm'));
  });

  it('docs/protocol.md documents every client envelope type', () => {
    for (const type of Object.keys(clientSignals)) expect(protocol).toContain(`\`${type}\``);
  });

  it('README and .env.example document every configuration variable', () => {
    const readme = read('README.md');
    const example = read('.env.example');
    for (const variable of CONFIG_VARIABLES) {
      expect(readme, variable).toContain(`| \`${variable}\` |`);
      expect(example, variable).toMatch(new RegExp(`^${variable}=`, 'm'));
    }
  });
});
