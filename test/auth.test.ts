// Token verification over real gateways with asymmetric keys: a public key file per key type, and the same checks
// through a JWK set. Every refused token gets `error` AUTH_FAILED with a reason naming the check, then close 4003, and
// no reply echoes the token (or the kid it carried).
import { createPublicKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UnsecuredJWT, exportSPKI } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { mintToken, type MintOptions } from '../src/auth/jwt';
import type { Algorithm } from '../src/auth/keys';
import { tempDir } from './helpers/children';
import { startTestGateway, type TestGateway } from './helpers/gateway';
import { signingKey, startJwksServer, type SigningKey } from './helpers/jwks';
import type { ProbeClient } from './helpers/ProbeClient';

const ISSUER = 'https://issuer.example';
const AUDIENCE = 'gateway';
const dir = tempDir('gw-auth-');

let rsa: SigningKey;
let ec: SigningKey;
let ed: SigningKey;
/** Another RSA key under the same kid: a forger's. */
let forger: SigningKey;
let rsaPem: string;
let rsaPemFile: string;

/** Writes `key`'s public half as an SPKI PEM file. */
async function pemFile(key: SigningKey): Promise<string> {
  const path = join(dir, `${key.kid}-${key.alg}.pem`);
  writeFileSync(path, await exportSPKI(key.publicKey));
  return path;
}

beforeAll(async () => {
  [rsa, ec, ed, forger] = await Promise.all([signingKey('rsa-1'), signingKey('ec-1', 'ES256'), signingKey('ed-1', 'EdDSA'), signingKey('rsa-1')]);
  rsaPem = await exportSPKI(rsa.publicKey);
  rsaPemFile = await pemFile(rsa);
});

/** A token the gateways below accept, changed by `opts`. */
const token = (opts: Partial<MintOptions> = {}, key: SigningKey = rsa) =>
  mintToken({ sub: 'alice', groups: ['g'], alg: key.alg, kid: key.kid, iss: ISSUER, aud: AUDIENCE, ...opts }, key.privateKey);

/** Identifies with `jwt` and returns the reply (and the connection, to see its close). */
async function identify(gw: TestGateway, jwt: string): Promise<{ reply: { type: string; data?: Record<string, unknown> }; client: ProbeClient }> {
  const client = await gw.connect();
  return { reply: await client.identify(jwt, ['g']), client };
}

async function expectRefused(gw: TestGateway, jwt: string, reason: RegExp, secrets: string[] = []): Promise<void> {
  const { reply, client } = await identify(gw, jwt);
  expect(reply.type).toBe('error');
  expect(reply.data).toMatchObject({ code: 'AUTH_FAILED', message: expect.stringMatching(reason) });
  for (const secret of [jwt, ...secrets]) expect(JSON.stringify(reply)).not.toContain(secret);
  expect((await client.closed).code).toBe(4003);
}

describe('a public key file (GW_JWT_PUBLIC_KEY_FILE)', () => {
  const accepted: [string, () => SigningKey, Algorithm[]][] = [
    ['RSA', () => rsa, ['RS256', 'RS512', 'PS256', 'PS384']],
    ['EC P-256', () => ec, ['ES256']],
    ['Ed25519', () => ed, ['EdDSA']],
  ];
  for (const [type, key, algorithms] of accepted) {
    it(`an ${type} key verifies ${algorithms.join(', ')}`, async () => {
      const gw = await startTestGateway({ GW_JWT_PUBLIC_KEY_FILE: await pemFile(key()) });
      for (const alg of algorithms) {
        const { reply } = await identify(gw, await mintToken({ sub: 'alice', groups: ['g'], alg }, key().privateKey));
        expect([alg, reply.type, reply.data?.userId]).toEqual([alg, 'ready', 'alice']);
      }
    });
  }

  it('the clock tolerance covers nbf, exp and iat by GW_JWT_CLOCK_TOLERANCE_MS, and no more', async () => {
    const lenient = await startTestGateway({ GW_JWT_PUBLIC_KEY_FILE: rsaPemFile, GW_JWT_CLOCK_TOLERANCE_MS: '60000' });
    const strict = await startTestGateway({ GW_JWT_PUBLIC_KEY_FILE: rsaPemFile, GW_JWT_CLOCK_TOLERANCE_MS: '0' });
    const skewed = await mintToken({ sub: 'alice', groups: ['g'], nbf: 30, iat: 30 }, rsa.privateKey);
    expect((await identify(lenient, skewed)).reply.type).toBe('ready');
    await expectRefused(strict, skewed, /^token is not valid yet \("nbf" is in the future\)$/);
    const early = await mintToken({ sub: 'alice', groups: ['g'], iat: 30 }, rsa.privateKey);
    await expectRefused(strict, early, /^token "iat" is in the future$/);
    const late = await mintToken({ sub: 'alice', groups: ['g'], ttl: -30 }, rsa.privateKey);
    expect((await identify(lenient, late)).reply.type).toBe('ready');
    await expectRefused(strict, late, /^token expired$/);
    // And no more: 90 s of skew is past the lenient gateway's 60 s.
    await expectRefused(lenient, await mintToken({ sub: 'alice', groups: ['g'], nbf: 90 }, rsa.privateKey), /^token is not valid yet \("nbf" is in the future\)$/);
    await expectRefused(lenient, await mintToken({ sub: 'alice', groups: ['g'], iat: 90 }, rsa.privateKey), /^token "iat" is in the future$/);
    await expectRefused(lenient, await mintToken({ sub: 'alice', groups: ['g'], ttl: -90 }, rsa.privateKey), /^token expired$/);
  });
});

type Source = 'public key file' | 'JWK set';

interface Case {
  name: string;
  make: () => Promise<string>;
  /** The reason, or one per source when they differ. */
  reason: RegExp | Record<Source, RegExp>;
  /** Attacker text that must not come back either. */
  echoes?: string[];
  only?: Source;
}

const ALG_REFUSED = /^token "alg" is not accepted: this gateway's key verifies RS256, RS384, RS512, PS256, PS384, PS512/;
const KID_REFUSED = /^token "kid" is malformed: it must match \[A-Za-z0-9\._~-\]\{1,128\}$/;
const BAD_SIGNATURE = /^token is malformed or its signature is invalid$/;

const cases: Case[] = [
  { name: 'alg: none', make: async () => new UnsecuredJWT({ groups: ['g'] }).setSubject('alice').setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('1h').encode(), reason: ALG_REFUSED },
  { name: 'HS256 with the public key PEM as the HMAC secret', make: () => mintToken({ sub: 'alice', alg: 'HS256', kid: rsa.kid, iss: ISSUER, aud: AUDIENCE }, new TextEncoder().encode(rsaPem)), reason: ALG_REFUSED },
  {
    name: 'HS256 with the public key DER as the HMAC secret',
    make: () => mintToken({ sub: 'alice', alg: 'HS256', kid: rsa.kid, iss: ISSUER, aud: AUDIENCE }, new Uint8Array(createPublicKey(rsaPem).export({ type: 'spki', format: 'der' }))),
    reason: ALG_REFUSED,
  },
  {
    name: "an algorithm of another key type (ES256 under the RSA key's kid)",
    make: () => token({ alg: 'ES256', kid: rsa.kid }, ec),
    reason: { 'public key file': ALG_REFUSED, 'JWK set': /^the key with the token's "kid" in the key set at GW_JWKS_URL does not fit the token's "alg" \(a key of another type\)$/ },
  },
  { name: 'a signature by another key under the same kid', make: () => token({}, forger), reason: BAD_SIGNATURE },
  { name: 'an unknown kid', make: () => token({ kid: 'retired-key-7' }), reason: /^no key for the token's "kid" in the key set at GW_JWKS_URL$/, echoes: ['retired-key-7'], only: 'JWK set' },
  { name: 'a kid with path characters', make: () => token({ kid: '../../etc/passwd' }), reason: KID_REFUSED, echoes: ['passwd'] },
  { name: 'a kid that is a URL', make: () => token({ kid: 'https://evil.example/jwks.json' }), reason: KID_REFUSED, echoes: ['evil.example'] },
  { name: 'a kid over 128 characters', make: () => token({ kid: 'k'.repeat(129) }), reason: KID_REFUSED, echoes: ['k'.repeat(129)] },
  { name: 'a kid that is not a string', make: () => token({ kid: undefined, header: { kid: 42 } }), reason: KID_REFUSED },
  { name: 'a header over 2048 characters', make: () => token({ header: { x: 'a'.repeat(1600) } }), reason: /^token header is over 2048 characters$/ },
  { name: 'nbf in the future', make: () => token({ nbf: 60 }), reason: /^token is not valid yet \("nbf" is in the future\)$/ },
  { name: 'no exp', make: () => token({ ttl: null }), reason: /^token claim "exp" is missing or invalid$/ },
  { name: 'exp in the past', make: () => token({ ttl: -60 }), reason: /^token expired$/ },
  { name: 'iat far in the future', make: () => token({ iat: 600 }), reason: /^token "iat" is in the future$/ },
  { name: 'another audience', make: () => token({ aud: 'billing' }), reason: /^token audience \("aud"\) is not accepted$/ },
  { name: 'no audience', make: () => mintToken({ sub: 'alice', kid: rsa.kid, iss: ISSUER }, rsa.privateKey), reason: /^token claim "aud" is missing or invalid$/ },
  { name: 'another issuer', make: () => token({ iss: 'https://other-issuer.example' }), reason: /^token issuer \("iss"\) is not accepted$/ },
  { name: 'a sub over 256 characters', make: () => token({ sub: 'u'.repeat(257) }), reason: /^token claim "sub" is invalid$/ },
  { name: 'three segments that are not a JWT', make: async () => 'not.a.jwt', reason: BAD_SIGNATURE },
];

const gateways: Record<Source, () => Promise<TestGateway>> = {
  'public key file': () => startTestGateway({ GW_JWT_PUBLIC_KEY_FILE: rsaPemFile, GW_JWT_ISSUER: ISSUER, GW_JWT_AUDIENCE: `${AUDIENCE},other-gateway` }),
  'JWK set': async () => startTestGateway({ GW_JWKS_URL: (await startJwksServer([rsa])).url, GW_JWT_ISSUER: ISSUER, GW_JWT_AUDIENCE: `${AUDIENCE},other-gateway` }),
};

for (const source of Object.keys(gateways) as Source[]) {
  describe(`refused tokens, verifying with a ${source}`, () => {
    it('accepts the token the cases below each break once', async () => {
      const gw = await gateways[source]();
      expect((await identify(gw, await token())).reply).toMatchObject({ type: 'ready', data: { userId: 'alice' } });
    });

    for (const c of cases.filter((c) => c.only === undefined || c.only === source)) {
      it(`${c.name}: AUTH_FAILED, close 4003`, async () => {
        const gw = await gateways[source]();
        const reason = c.reason instanceof RegExp ? c.reason : c.reason[source];
        await expectRefused(gw, await c.make(), reason, c.echoes);
      });
    }
  });
}
