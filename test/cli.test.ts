// The operator tools as real processes: --help, wrong command lines (exit 2, one line and the usage, no stack),
// `yarn token`'s choice of signing key, and `yarn emit` failing fast when Redis does not answer. Every spawn pays
// about a second of CPU for ts-node, so the tests run concurrently and each case is one the tools' contract names.
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describe, it, type ExpectStatic } from 'vitest';
import { createVerifier } from '../src/auth/jwt';
import { DEV_JWT_SECRET, loadConfig } from '../src/config';
import { childEnv, tempDir } from './helpers/children';

const root = join(__dirname, '..');
const CLIS = {
  token: 'src/cli/token.ts',
  emit: 'src/cli/emit.ts',
  bench: 'bench/run.ts',
  'bench:redis': 'bench/redisCapacity.ts',
  'bench:profile': 'bench/profileTop.ts',
} as const;
type Cli = keyof typeof CLIS;

const STACK_LINE = /\n\s+at /;
const TOKEN_LINE = /^[\w-]+\.[\w-]+\.[\w-]+\n$/;
const ENV_SECRET = 'secret-from-the-environment-0123456789';
const FILE_SECRET = 'secret-from-the-env-file-0123456789abc';
const OTHER_SECRET = 'secret-from-another-env-file-012345678';

// Loaded into bench/run.ts before it runs: starting any process (the build, a server) fails it, so a --help or a wrong
// command line that got as far as running the benchmark is caught instead of taking the machine for minutes.
const noProcesses = join(tempDir('gw-cli-'), 'no-processes.js');
writeFileSync(
  noProcesses,
  `const cp = require('node:child_process');
for (const name of ['spawn', 'spawnSync', 'fork', 'exec', 'execSync', 'execFile', 'execFileSync']) {
  cp[name] = () => { throw new Error('started a process (' + name + ')'); };
}
`,
);

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A child that hangs is killed, and then fails its test on the exit code, well before vitest's own timeout. */
const SPAWN_TIMEOUT_MS = 30_000;
const TEST_TIMEOUT_MS = 60_000;

/** Runs a CLI as `yarn <name>` does (ts-node, transpile only), in `cwd` (default: the repo root). */
function cli(name: Cli, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Outcome> {
  const preload = name === 'bench' ? ['-r', noProcesses] : [];
  const child = spawn(process.execPath, [...preload, '-r', 'ts-node/register/transpile-only', join(root, CLIS[name]), ...args], {
    cwd: opts.cwd ?? root,
    env: childEnv({ TS_NODE_PROJECT: join(root, 'tsconfig.json'), NODE_PATH: join(root, 'node_modules'), ...opts.env }),
    timeout: SPAWN_TIMEOUT_MS,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += String(d)));
  child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A wrong command line: exit 2, nothing on stdout, one line saying what is wrong and then the usage on stderr. */
function expectUsageError(expect: ExpectStatic, r: Outcome, name: Cli, message: RegExp): void {
  expect(r.stderr).not.toMatch(STACK_LINE);
  const [line, ...usage] = r.stderr.split('\n');
  expect(line).toMatch(new RegExp(`^${name}: `));
  expect(line).toMatch(message);
  expect(usage.join('\n')).toMatch(new RegExp(`^usage: yarn (-s )?${name} `));
  expect(r.stdout).toBe('');
  expect(r.code).toBe(2);
}

/** A failure: exit 1, nothing on stdout, exactly one line on stderr. */
function expectFailure(expect: ExpectStatic, r: Outcome, name: Cli, message: RegExp): void {
  expect(r.stderr).toMatch(new RegExp(`^${name}: [^\n]+\n$`));
  expect(r.stderr).toMatch(message);
  expect(r.stdout).toBe('');
  expect(r.code).toBe(1);
}

/** The token's claims when `secret` verifies it, else the reason it does not. */
async function claimsOf(token: string, secret: string) {
  const result = await createVerifier(new TextEncoder().encode(secret)).verify(token.trim());
  return result.ok ? result.claims : result.reason;
}

const BAD_SIGNATURE = 'token is malformed or its signature is invalid';

// First: its Redis test spends 5 s waiting, which the CPU-bound tests below can use.
describe.concurrent('yarn emit: failures are one line', { timeout: TEST_TIMEOUT_MS }, () => {
  it('without GW_REDIS_URL', async ({ expect }) => {
    const r = await cli('emit', ['--group', 'g', '--payload', '{"x":1}'], { cwd: tempDir('gw-emit-'), env: { NODE_ENV: 'development' } });
    expectFailure(expect, r, 'emit', /GW_REDIS_URL is not set/);
  });

  it('within seconds when Redis accepts the connection and never answers, without echoing its password', async ({ expect }) => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    try {
      const r = await cli('emit', ['--user', 'alice', '--payload', '1'], { cwd: tempDir('gw-emit-'), env: { NODE_ENV: 'development', GW_REDIS_URL: `redis://:hunter2@127.0.0.1:${port}` } });
      // Without the deadline the emitter waits forever and the spawn's timeout kills it: no line, no exit code 1.
      expectFailure(expect, r, 'emit', new RegExp(`^emit: Redis at 127\\.0\\.0\\.1:${port} \\(GW_REDIS_URL\\) did not answer within 5 s\n$`));
      expect(sockets.length).toBeGreaterThan(0);
      expect(r.stderr).not.toContain('hunter2');
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });
});

describe.concurrent('every CLI', { timeout: TEST_TIMEOUT_MS }, () => {
  for (const name of Object.keys(CLIS) as Cli[]) {
    it(`${name} --help prints the usage on stdout and exits 0`, async ({ expect }) => {
      const r = await cli(name, ['--help']);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(new RegExp(`^usage: yarn (-s )?${name} [^]*\n\nOptions:\n[^]*  -h, --help  `));
      expect(r.code).toBe(0);
    });
  }

  it('-h is --help (one CLI: they share src/cli/args.ts)', async ({ expect }) => {
    const [long, short] = await Promise.all([cli('emit', ['--help']), cli('emit', ['-h'])]);
    expect(short.stdout).toMatch(/^usage: yarn emit /);
    expect(short.stdout).toBe(long.stdout);
    expect(short.code).toBe(0);
  });

  const unknown: [Cli, string][] = [
    ['token', '--bogus'],
    ['emit', '--bogus'],
    ['bench', '--no-write'], // the flag `yarn bench` had before --write-docs
    ['bench:redis', '--bogus'],
    ['bench:profile', '--bogus'],
  ];
  for (const [name, option] of unknown) {
    it(`${name} ${option}: unknown option, one line and the usage, exit 2`, async ({ expect }) => {
      expectUsageError(expect, await cli(name, [option]), name, new RegExp(`unknown option ${option}$`));
    });
  }

  const badValues: [Cli, string[], RegExp][] = [
    ['token', ['--sub', 'alice', '--ttl', '10x'], /--ttl "10x" is not a duration/],
    ['token', ['--sub', 'alice', '--role', 'root'], /--role must be client, service or admin/],
    ['token', ['--groups', 'g'], /missing --sub/],
    ['token', ['--sub', 'alice', '--alg', 'RS256'], /--alg RS256 needs --private-key <file>/],
    ['emit', ['--group', 'g', '--payload', '{"x":'], /--payload is not valid JSON/],
    ['emit', ['--group', 'g', '--payload', '1', '--role', 'admin', '--role', 'boss'], /--role: Invalid option: expected one of "client"\|"service"\|"admin"$/],
    ['emit', ['--user', 'alice', '--payload', '1', '--except-user', 'bob', '--except-user', 'bob'], /--except-user: "bob" is listed twice$/],
    ['bench', ['--seconds', 'abc'], /--seconds must be a number greater than 0 \(got "abc"\)/],
    ['bench:redis', ['--seconds', '5', '--instances'], /option --instances needs a value/],
    ['bench:redis', ['--modes', 'single,bogus'], /--modes: "bogus" is not one of single, classic, sharded$/],
    ['bench:redis', ['--rates', '5000,fast'], /--rates must be a whole number from 1 to 10000000 \(got "fast"\)$/],
    ['bench:profile', [], /missing the .cpuprofile file/],
  ];
  for (const [name, args, message] of badValues) {
    it(`${name} ${args.join(' ') || '(no arguments)'}: one line, the usage, exit 2`, async ({ expect }) => {
      expectUsageError(expect, await cli(name, args), name, message);
    });
  }
});

describe.concurrent('yarn token: the signing key', { timeout: TEST_TIMEOUT_MS }, () => {
  /** A fresh working directory, with a .env when `dotenv` is given. */
  const workdir = (dotenv?: string) => {
    const dir = tempDir('gw-token-');
    if (dotenv !== undefined) writeFileSync(join(dir, '.env'), dotenv);
    return dir;
  };

  it('GW_JWT_SECRET from the environment wins over ./.env', async ({ expect }) => {
    const cwd = workdir(`GW_JWT_SECRET=${FILE_SECRET}\n`);
    const r = await cli('token', ['--sub', 'alice', '--groups', 'a, team-*', '--role', 'service'], { cwd, env: { NODE_ENV: 'production', GW_JWT_SECRET: ENV_SECRET } });
    expect(r.stderr).toBe('token: signing with GW_JWT_SECRET from the environment\n');
    expect(r.stdout).toMatch(TOKEN_LINE);
    expect(await claimsOf(r.stdout, ENV_SECRET)).toMatchObject({ sub: 'alice', groups: ['a', 'team-*'], role: 'service' });
    expect(await claimsOf(r.stdout, FILE_SECRET)).toBe(BAD_SIGNATURE);
    expect(r.code).toBe(0);
  });

  it('else GW_JWT_SECRET from ./.env in the working directory', async ({ expect }) => {
    const cwd = workdir(`NODE_ENV=production\nGW_JWT_SECRET=${FILE_SECRET}\n`);
    const r = await cli('token', ['--sub', 'alice'], { cwd, env: { NODE_ENV: 'production' } });
    expect(r.stderr).toBe(`token: signing with GW_JWT_SECRET from ${join(cwd, '.env')}\n`);
    expect(await claimsOf(r.stdout, FILE_SECRET)).toMatchObject({ sub: 'alice', groups: [], role: 'client' });
    expect(r.code).toBe(0);
  });

  it('--dotenv names the env file instead of ./.env', async ({ expect }) => {
    const cwd = workdir(`GW_JWT_SECRET=${FILE_SECRET}\n`);
    const other = join(workdir(), 'gateways.env');
    writeFileSync(other, `NODE_ENV=production\nGW_JWT_SECRET="${OTHER_SECRET}"\n`);
    const r = await cli('token', ['--sub', 'alice', '--dotenv', other], { cwd, env: { NODE_ENV: 'development' } });
    expect(r.stderr).toBe(`token: signing with GW_JWT_SECRET from ${other}\n`);
    expect(await claimsOf(r.stdout, OTHER_SECRET)).toMatchObject({ sub: 'alice' });
    expect(await claimsOf(r.stdout, FILE_SECRET)).toBe(BAD_SIGNATURE);
    expect(r.code).toBe(0);
  });

  it('a missing --dotenv is a wrong command line', async ({ expect }) => {
    const cwd = workdir(`GW_JWT_SECRET=${FILE_SECRET}\n`);
    const r = await cli('token', ['--sub', 'alice', '--dotenv', join(cwd, 'missing.env')], { cwd, env: { NODE_ENV: 'development' } });
    expectUsageError(expect, r, 'token', /--dotenv .*missing\.env: no such file/);
  });

  it('else the development secret when NODE_ENV=development, with a plain warning', async ({ expect }) => {
    const cwd = workdir();
    const r = await cli('token', ['--sub', 'alice'], { cwd, env: { NODE_ENV: 'development' } });
    expect(r.stderr).toMatch(/^token: warning: signing with the DEVELOPMENT secret [^\n]*only gateways started with NODE_ENV=development and no GW_JWT_SECRET \(yarn dev\) accept this token\n$/);
    expect(r.stdout).toMatch(TOKEN_LINE);
    expect(await claimsOf(r.stdout, DEV_JWT_SECRET)).toMatchObject({ sub: 'alice' });
    expect(r.code).toBe(0);
  });

  it('refuses without a secret when NODE_ENV=production', async ({ expect }) => {
    const r = await cli('token', ['--sub', 'alice'], { cwd: workdir(), env: { NODE_ENV: 'production' } });
    expectFailure(expect, r, 'token', /no GW_JWT_SECRET .*NODE_ENV is production: export the GW_JWT_SECRET your gateways use, or pass --dotenv/);
  });

  it('refuses when the env file sets NODE_ENV=production without a secret, whatever NODE_ENV says here', async ({ expect }) => {
    // .env.example's own values, copied as they stand.
    const cwd = workdir('NODE_ENV=production\nGW_JWT_SECRET=\n');
    const r = await cli('token', ['--sub', 'alice'], { cwd, env: { NODE_ENV: 'development' } });
    expectFailure(expect, r, 'token', /\.env sets NODE_ENV=production: export the GW_JWT_SECRET your gateways use, or pass --dotenv/);
  });

  it('refuses a weak secret, naming GW_JWT_SECRET without echoing it', async ({ expect }) => {
    const r = await cli('token', ['--sub', 'alice'], { cwd: workdir(), env: { GW_JWT_SECRET: 'short-but-secret' } });
    expectFailure(expect, r, 'token', /GW_JWT_SECRET from the environment is too weak: it must be at least 32 bytes/);
    expect(r.stderr).not.toContain('short-but-secret');
  });

  it('--private-key signs with the key type\'s algorithm, and --kid, --iss, --aud and --ttl in seconds go into the token', async ({ expect }) => {
    const dir = workdir();
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const [keyFile, publicFile] = [join(dir, 'private.pem'), join(dir, 'public.pem')];
    writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(publicFile, publicKey.export({ type: 'spki', format: 'pem' }));
    const args = ['--sub', 'alice', '--private-key', keyFile, '--kid', 'key-1', '--iss', 'https://issuer.example', '--aud', 'gateway, other', '--ttl', '3s'];
    const r = await cli('token', args, { cwd: dir, env: { NODE_ENV: 'production' } });
    expect(r.stderr).toBe(`token: signing with the private key in ${keyFile} (RS256)\n`);
    expect(r.stdout).toMatch(TOKEN_LINE);
    const token = r.stdout.trim();
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'RS256', kid: 'key-1' });
    const { iat, exp, aud } = decodeJwt(token);
    expect([exp! - iat!, aud]).toEqual([3, ['gateway', 'other']]);
    const { auth } = loadConfig({ GW_JWT_PUBLIC_KEY_FILE: publicFile, GW_JWT_ISSUER: 'https://issuer.example', GW_JWT_AUDIENCE: 'gateway' });
    expect(await createVerifier(auth).verify(token)).toMatchObject({ ok: true, claims: { sub: 'alice' } });
    expect(r.code).toBe(0);
  });

  it('--alg that the private key cannot sign with is a wrong command line', async ({ expect }) => {
    const keyFile = join(workdir(), 'ec.pem');
    writeFileSync(keyFile, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const r = await cli('token', ['--sub', 'alice', '--private-key', keyFile, '--alg', 'RS256'], { env: { NODE_ENV: 'production' } });
    expectUsageError(expect, r, 'token', /--alg RS256 does not fit the key in .*ec\.pem: it signs with ES256$/);
  });

  it("the README's own line works through yarn", async ({ expect }) => {
    const line = "yarn -s token --sub alice --groups 'group-1,team-*' --role client --ttl 1h";
    const started = Date.now();
    // yarn leaves a folder of its own in TMPDIR: give it one that goes away with the test file.
    const env = childEnv({ GW_JWT_SECRET: ENV_SECRET, TMPDIR: tempDir('gw-yarn-') });
    const child = spawn('/bin/sh', ['-c', line], { cwd: root, env, timeout: SPAWN_TIMEOUT_MS });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += String(d)));
    const code = await new Promise((resolve) => child.once('close', resolve));
    expect(stdout).toMatch(TOKEN_LINE);
    expect(await claimsOf(stdout, ENV_SECRET)).toMatchObject({ sub: 'alice', groups: ['group-1', 'team-*'], role: 'client' });
    const { iat, exp } = decodeJwt(stdout.trim());
    expect(exp! - iat!).toBe(3600);
    expect(iat! * 1000).toBeGreaterThan(started - 2000);
    expect(code).toBe(0);
  });
});
