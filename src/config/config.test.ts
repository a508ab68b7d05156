import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/children';
import { ConfigError, DEV_JWT_SECRET, loadConfig } from '.';

const secret = 'a-production-secret-of-at-least-32-bytes';

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig({ GW_JWT_SECRET: secret });
    expect(c).toMatchObject({
      port: 4100,
      host: '0.0.0.0',
      logLevel: 'info',
      tokenExpiryGraceMs: 10000,
      heartbeatIntervalMs: 10000,
      heartbeatTimeoutMs: 25000,
      identifyTimeoutMs: 5000,
      orphanSessionTtlMs: 30000,
      shutdownGraceMs: 5000,
      maxPayloadBytes: 65536,
      usingDevSecret: false,
    });
  });

  it('puts the internal listener on GW_PORT + 10000 unless GW_INTERNAL_PORT is set, so instances differing only in GW_PORT never collide', () => {
    expect(loadConfig({ GW_JWT_SECRET: secret })).toMatchObject({ internalPort: 14100, internalHost: '127.0.0.1' });
    expect(loadConfig({ GW_JWT_SECRET: secret, GW_PORT: '4101' }).internalPort).toBe(14101);
    expect(loadConfig({ GW_JWT_SECRET: secret, GW_PORT: '0' }).internalPort).toBe(0);
    expect(loadConfig({ GW_JWT_SECRET: secret, GW_PORT: '4101', GW_INTERNAL_PORT: '9464' }).internalPort).toBe(9464);
    expect(loadConfig({ GW_JWT_SECRET: secret, GW_PORT: '4101', GW_INTERNAL_PORT: '' }).internalPort).toBe(14101);
    expect(() => loadConfig({ GW_JWT_SECRET: secret, GW_PORT: '60000' })).toThrow(/^GW_INTERNAL_PORT: is unset and its default, GW_PORT \+ 10000, is above 65535/);
  });

  it('still reads GW_METRICS_PORT and GW_METRICS_HOST, the former names; set apart from the new ones, the new ones win with a notice', () => {
    expect(loadConfig({ GW_JWT_SECRET: secret, GW_METRICS_PORT: '9464', GW_METRICS_HOST: '0.0.0.0' })).toMatchObject({ internalPort: 9464, internalHost: '0.0.0.0', notices: [] });
    expect(loadConfig({ GW_JWT_SECRET: secret, GW_METRICS_PORT: '9464', GW_INTERNAL_PORT: '9464' })).toMatchObject({ internalPort: 9464, notices: [] });
    expect(loadConfig({ GW_JWT_SECRET: secret, GW_METRICS_HOST: '', GW_INTERNAL_HOST: '10.0.0.2' }).internalHost).toBe('10.0.0.2');
    expect(loadConfig({ GW_JWT_SECRET: secret, GW_METRICS_PORT: '9464', GW_INTERNAL_PORT: '9465' })).toMatchObject({
      internalPort: 9465,
      notices: ['GW_METRICS_PORT (the former name of GW_INTERNAL_PORT) is ignored: GW_INTERNAL_PORT is set as well, to another value; remove GW_METRICS_PORT'],
    });
    // An .env from before the rename next to the compose file's setting.
    expect(loadConfig({ GW_JWT_SECRET: secret, GW_METRICS_HOST: '127.0.0.1', GW_INTERNAL_HOST: '0.0.0.0' })).toMatchObject({ internalHost: '0.0.0.0', notices: [expect.stringMatching(/^GW_METRICS_HOST \(the former name of GW_INTERNAL_HOST\) is ignored/)] });
  });

  it('uses the development secret only in development', () => {
    expect(loadConfig({ NODE_ENV: 'development' }).usingDevSecret).toBe(true);
    expect(() => loadConfig({})).toThrow(/^GW_JWT_SECRET: no key source: set one of GW_JWT_SECRET, GW_JWT_PUBLIC_KEY_FILE or GW_JWKS_URL/);
    expect(() => loadConfig({ NODE_ENV: 'production', GW_JWT_SECRET: DEV_JWT_SECRET.slice(0, 31) })).toThrow(/GW_JWT_SECRET: is too weak/);
  });

  it('names the variable that is wrong', () => {
    const bad: [Record<string, string>, string][] = [
      [{ GW_PORT: 'eighty' }, 'GW_PORT'],
      [{ GW_PORT: '70000' }, 'GW_PORT'],
      [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
      [{ GW_HEARTBEAT_TIMEOUT_MS: '-5' }, 'GW_HEARTBEAT_TIMEOUT_MS'],
      [{ GW_HEARTBEAT_INTERVAL_MS: '30000' }, 'GW_HEARTBEAT_INTERVAL_MS'],
    ];
    for (const [env, variable] of bad) {
      let error: unknown;
      try {
        loadConfig({ GW_JWT_SECRET: secret, ...env });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).variable).toBe(variable);
    }
  });

  it('treats empty values as unset', () => {
    expect(loadConfig({ GW_JWT_SECRET: secret, GW_PORT: '' }).port).toBe(4100);
  });

  it('enables the server API only with a key of at least 32 characters, with its body and rate limits', () => {
    expect(loadConfig({ GW_JWT_SECRET: secret }).api).toBeUndefined();
    expect(loadConfig({ GW_JWT_SECRET: secret, GW_API_KEY: 'k'.repeat(32) }).api).toEqual({ key: 'k'.repeat(32), maxBodyBytes: 1_048_576, ratePerSec: 1000 });
    expect(loadConfig({ GW_JWT_SECRET: secret, GW_API_KEY: 'k'.repeat(32), GW_API_MAX_BODY_BYTES: '4096', GW_API_RATE_PER_SEC: '5' }).api).toMatchObject({ maxBodyBytes: 4096, ratePerSec: 5 });
    const short = configError({ GW_JWT_SECRET: secret, GW_API_KEY: 'short-api-key' });
    expect([short.variable, short.message]).toEqual(['GW_API_KEY', 'GW_API_KEY: must be at least 32 characters']);
    // No request could ever carry a key of spaces, or one a header cannot hold.
    expect(configError({ GW_JWT_SECRET: secret, GW_API_KEY: ' '.repeat(40) }).message).toBe('GW_API_KEY: must be printable ASCII without spaces (a request header carries it)');
    expect(configError({ GW_JWT_SECRET: secret, GW_API_KEY: `${'k'.repeat(32)}é` }).variable).toBe('GW_API_KEY');
    for (const [variable, value] of [['GW_API_MAX_BODY_BYTES', '100'], ['GW_API_MAX_BODY_BYTES', 'lots'], ['GW_API_RATE_PER_SEC', '0'], ['GW_API_RATE_PER_SEC', '1.5']]) {
      expect(configError({ GW_JWT_SECRET: secret, GW_API_KEY: 'k'.repeat(32), [variable!]: value! }).variable).toBe(variable);
    }
  });
});

/** The ConfigError `env` raises, for its variable and message. */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('no ConfigError');
}

describe('loadConfig: token keys', () => {
  const dir = tempDir('gw-config-keys-');
  let files = 0;
  /** Writes `text` to a fresh file and returns its path. */
  const file = (text: string | Buffer) => {
    const path = join(dir, `key-${++files}.pem`);
    writeFileSync(path, text);
    return path;
  };
  const spki = (pair: { publicKey: { export(o: { type: 'spki'; format: 'pem' }): string | Buffer } }) => file(pair.publicKey.export({ type: 'spki', format: 'pem' }));
  const jwks = 'https://issuer.example/.well-known/jwks.json';

  it('a shared secret verifies HS256/384/512 and signs session tokens unless GW_SESSION_SECRET is set', () => {
    const c = loadConfig({ GW_JWT_SECRET: secret });
    expect(c.auth).toEqual({ keys: { kind: 'secret', secret: new TextEncoder().encode(secret), algorithms: ['HS256', 'HS384', 'HS512'] }, issuer: undefined, audience: undefined, clockToleranceMs: 5000 });
    expect(Buffer.from(c.sessionSecret).toString()).toBe(secret);
    const own = 'a-session-secret-of-at-least-32-bytes!!';
    expect(Buffer.from(loadConfig({ GW_JWT_SECRET: secret, GW_SESSION_SECRET: own }).sessionSecret).toString()).toBe(own);
    expect(configError({ GW_JWT_SECRET: secret, GW_SESSION_SECRET: 'short' }).message).toBe('GW_SESSION_SECRET: is too weak: it must be at least 32 bytes');
  });

  it('pins a public key file to the algorithms of its type', () => {
    const pinned = (path: string) => loadConfig({ GW_JWT_PUBLIC_KEY_FILE: path }).auth.keys.algorithms;
    expect(pinned(spki(generateKeyPairSync('rsa', { modulusLength: 2048 })))).toEqual(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']);
    expect(pinned(spki(generateKeyPairSync('rsa-pss', { modulusLength: 2048 })))).toEqual(['PS256', 'PS384', 'PS512']);
    expect(pinned(spki(generateKeyPairSync('rsa-pss', { modulusLength: 2048, hashAlgorithm: 'sha384', mgf1HashAlgorithm: 'sha384' })))).toEqual(['PS384']);
    expect(pinned(spki(generateKeyPairSync('ec', { namedCurve: 'P-256' })))).toEqual(['ES256']);
    expect(pinned(spki(generateKeyPairSync('ec', { namedCurve: 'P-384' })))).toEqual(['ES384']);
    expect(pinned(spki(generateKeyPairSync('ec', { namedCurve: 'P-521' })))).toEqual(['ES512']);
    expect(pinned(spki(generateKeyPairSync('ed25519')))).toEqual(['EdDSA']);
    expect(pinned(spki(generateKeyPairSync('ed448')))).toEqual(['EdDSA']);
  });

  it('takes the public key of an X.509 certificate', () => {
    const key = join(dir, 'cert-key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=issuer', '-days', '1'], { stdio: 'ignore' });
    expect(loadConfig({ GW_JWT_PUBLIC_KEY_FILE: cert }).auth.keys).toMatchObject({ kind: 'public-key', file: cert, algorithms: ['ES256'] });
  });

  it('refuses key files that cannot be used, without printing their content', () => {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const privatePem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const cases: [string, RegExp][] = [
      [join(dir, 'missing.pem'), /cannot read .*missing\.pem: no such file$/],
      [dir, /cannot read .*: is a directory$/],
      [file(privatePem), /holds a private key: give the public key/],
      [file('not a key at all'), /is not a PEM public key \(-----BEGIN PUBLIC KEY-----\) or certificate$/],
      [file('-----BEGIN PUBLIC KEY-----\nZ2FyYmFnZQ==\n-----END PUBLIC KEY-----\n'), /is not a valid PEM public key or certificate$/],
      [file(Buffer.alloc(100_000, 'A')), /is over 65536 bytes/],
      [spki(generateKeyPairSync('rsa', { modulusLength: 1024 })), /is an RSA key of 1024 bits: at least 2048 are required$/],
      [spki(generateKeyPairSync('ec', { namedCurve: 'secp256k1' })), /is an EC key on an unsupported curve/],
      [spki(generateKeyPairSync('x25519')), /is a x25519 key: RSA \(at least 2048 bits\)/],
    ];
    for (const [path, message] of cases) {
      const err = configError({ GW_JWT_PUBLIC_KEY_FILE: path });
      expect(err.variable, path).toBe('GW_JWT_PUBLIC_KEY_FILE');
      expect(err.message, path).toMatch(message);
      expect(err.message).not.toMatch(/MII|BEGIN PRIVATE|AAAA/);
    }
  });

  it('takes a JWK set URL with its bounds, asymmetric algorithms only', () => {
    const c = loadConfig({ GW_JWKS_URL: jwks, GW_JWKS_TIMEOUT_MS: '2000', GW_JWKS_COOLDOWN_MS: '1000' });
    expect(c.auth.keys).toEqual({
      kind: 'jwks',
      url: new URL(jwks),
      algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'],
      timeoutMs: 2000,
      maxBytes: 262144,
      refreshMs: 600000,
      cooldownMs: 1000,
    });
    const bad: [Record<string, string>, string, RegExp][] = [
      [{ GW_JWKS_URL: 'not a url' }, 'GW_JWKS_URL', /is not a URL/],
      [{ GW_JWKS_URL: 'ftp://issuer.example/jwks' }, 'GW_JWKS_URL', /must be an http:\/\/ or https:\/\/ URL/],
      [{ GW_JWKS_URL: 'https://user:hunter2@issuer.example/jwks' }, 'GW_JWKS_URL', /must not carry credentials/],
      [{ GW_JWKS_URL: jwks, GW_JWKS_TIMEOUT_MS: '0' }, 'GW_JWKS_TIMEOUT_MS', /./],
      [{ GW_JWKS_URL: jwks, GW_JWKS_MAX_BYTES: '100' }, 'GW_JWKS_MAX_BYTES', /./],
      [{ GW_JWKS_URL: jwks, GW_JWKS_REFRESH_MS: 'often' }, 'GW_JWKS_REFRESH_MS', /./],
      [{ GW_JWKS_URL: jwks, GW_JWKS_COOLDOWN_MS: '-1' }, 'GW_JWKS_COOLDOWN_MS', /./],
    ];
    for (const [env, variable, message] of bad) {
      const err = configError(env);
      expect(err.variable, JSON.stringify(env)).toBe(variable);
      expect(err.message).toMatch(message);
      expect(err.message).not.toContain('hunter2');
    }
  });

  it('takes exactly one key source', () => {
    const pem = spki(generateKeyPairSync('ed25519'));
    expect(configError({ GW_JWT_SECRET: secret, GW_JWKS_URL: jwks }).message).toBe('GW_JWKS_URL: is set together with GW_JWT_SECRET: set exactly one key source');
    expect(configError({ GW_JWT_PUBLIC_KEY_FILE: pem, GW_JWKS_URL: jwks }).variable).toBe('GW_JWKS_URL');
    expect(configError({ NODE_ENV: 'development', GW_JWT_SECRET: secret, GW_JWT_PUBLIC_KEY_FILE: pem }).variable).toBe('GW_JWT_PUBLIC_KEY_FILE');
    expect(loadConfig({ NODE_ENV: 'development', GW_JWKS_URL: jwks })).toMatchObject({ usingDevSecret: false, auth: { keys: { kind: 'jwks' } } });
  });

  it('reads the issuer, the audience list and the clock tolerance', () => {
    const c = loadConfig({ GW_JWT_SECRET: secret, GW_JWT_ISSUER: 'https://issuer.example', GW_JWT_AUDIENCE: 'gateway, realtime', GW_JWT_CLOCK_TOLERANCE_MS: '0' });
    expect(c.auth).toMatchObject({ issuer: 'https://issuer.example', audience: ['gateway', 'realtime'], clockToleranceMs: 0 });
    expect(configError({ GW_JWT_SECRET: secret, GW_JWT_AUDIENCE: ' , ' }).message).toBe('GW_JWT_AUDIENCE: lists no audience');
    expect(configError({ GW_JWT_SECRET: secret, GW_JWT_CLOCK_TOLERANCE_MS: '300001' }).variable).toBe('GW_JWT_CLOCK_TOLERANCE_MS');
  });

  it('without a shared secret, session tokens use GW_SESSION_SECRET, else a key of this process, and Redis requires the variable', () => {
    const a = loadConfig({ GW_JWKS_URL: jwks }).sessionSecret;
    const b = loadConfig({ GW_JWKS_URL: jwks }).sessionSecret;
    expect(a.length).toBe(32);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
    const redis = { GW_JWKS_URL: jwks, GW_REDIS_URL: 'redis://127.0.0.1:6379' };
    expect(configError(redis).message).toBe(
      "GW_SESSION_SECRET: is required with GW_REDIS_URL and GW_JWKS_URL: instances must share GW_SESSION_SECRET to resume each other's sessions",
    );
    const own = 'a-session-secret-of-at-least-32-bytes!!';
    expect(Buffer.from(loadConfig({ ...redis, GW_SESSION_SECRET: own }).sessionSecret).toString()).toBe(own);
    expect(configError({ GW_JWT_PUBLIC_KEY_FILE: spki(generateKeyPairSync('ed25519')), GW_REDIS_URL: 'redis://127.0.0.1:6379' }).message).toMatch(/GW_REDIS_URL and GW_JWT_PUBLIC_KEY_FILE/);
  });

  it('takes one Redis by URL or a Redis Cluster by its seed nodes, never both', () => {
    expect(loadConfig({ GW_JWT_SECRET: secret, GW_REDIS_URL: 'redis://r:6379' }).redis).toEqual({ url: 'redis://r:6379' });
    expect(loadConfig({ GW_JWT_SECRET: secret, GW_REDIS_CLUSTER_NODES: 'r1:7000, r2:7001,[::1]:7002' }).redis).toEqual({
      nodes: [
        { host: 'r1', port: 7000 },
        { host: 'r2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
    });
    expect(loadConfig({ GW_JWT_SECRET: secret }).redis).toBeUndefined();
    expect(configError({ GW_JWT_SECRET: secret, GW_REDIS_URL: 'redis://r:6379', GW_REDIS_CLUSTER_NODES: 'r1:7000' }).message).toBe(
      'GW_REDIS_CLUSTER_NODES: is set together with GW_REDIS_URL: set GW_REDIS_URL for one Redis, or GW_REDIS_CLUSTER_NODES for a Redis Cluster, not both',
    );
    expect(configError({ GW_JWT_SECRET: secret, GW_REDIS_CLUSTER_NODES: 'r1:7000,redis://r2:7001' }).message).toBe('GW_REDIS_CLUSTER_NODES: "redis://r2:7001" is not host:port');
    expect(configError({ GW_JWT_SECRET: secret, GW_REDIS_CLUSTER_NODES: 'r1:70000' }).message).toBe('GW_REDIS_CLUSTER_NODES: "r1:70000" is not host:port');
    expect(configError({ GW_JWT_SECRET: secret, GW_REDIS_CLUSTER_NODES: ' , ' }).message).toBe('GW_REDIS_CLUSTER_NODES: must list the seed nodes as host:port,host:port,…');
  });
});
