// `yarn -s token --sub alice --groups 'group-1,team-*' [--role client] [--ttl 1h] [--dotenv <path>]`: mints a JWT for
// trying the gateway and prints it alone on stdout (TOKEN=$(yarn -s token --sub alice)). The key it signs with must be
// the one the target gateways verify with, so it is chosen by this rule and named on stderr:
//   0. --private-key <file> (PEM, PKCS#8): for gateways that verify with the matching public key or a JWK set that
//      holds it; the algorithm defaults from the key type, and an --alg the key cannot sign with is a usage error;
//   1. GW_JWT_SECRET from the process environment;
//   2. else GW_JWT_SECRET from the env file: ./.env, or --dotenv <path> (the .env the target gateways read; not named
//      --env-file, which Node 20 takes for its own option wherever it appears, yarn's command line included);
//   3. else the development secret (DEV_JWT_SECRET), only when NODE_ENV is development (the yarn script's default) and
//      the env file does not say production: only gateways started with NODE_ENV=development and no GW_JWT_SECRET
//      (`yarn dev`) accept that token, and stderr says so.
// Otherwise it refuses (exit 1) rather than print a token every gateway would reject. A secret shorter than
// MIN_JWT_SECRET_BYTES is refused as the gateway refuses it.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import dotenv from 'dotenv';
import { mintToken } from '../auth/jwt';
import { ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, KID_PATTERN, algorithmsForKey, type Algorithm } from '../auth/keys';
import { DEV_JWT_SECRET, MIN_JWT_SECRET_BYTES, processEnvironment } from '../config';
import { roleSchema, tokenClaimsSchema } from '../types/domain';
import { parseCommandLine, run, UsageError } from './args';

const USAGE = `usage: yarn -s token --sub <userId> [--groups 'group-1,team-*'] [--role client|service|admin] [--ttl 1h]
                     [--alg <alg>] [--private-key <file>] [--kid <kid>] [--iss <issuer>] [--aud <list>] [--dotenv <path>]

Prints a JWT for trying the gateway, alone on stdout: TOKEN=$(yarn -s token --sub alice)

Options:
  --sub <userId>       the user the token is for (required)
  --groups <list>      comma-separated groups and patterns it may join, e.g. 'group-1,team-*' (default: none)
  --role <role>        client, service or admin (default: client)
  --ttl <duration>     lifetime: a whole number and s, m, h, d or w, e.g. 30s, 30m, 1h, 2d (default: 1h)
  --alg <alg>          HS256, HS384 or HS512 with a secret (default: HS256); with --private-key, one the key type
                       allows: RS256/384/512 and PS256/384/512 (RSA), PS* (RSA-PSS), ES256/384/512 (EC P-256/384/521),
                       EdDSA (Ed25519, Ed448) (default: the first of those for the key)
  --private-key <file> sign with this PEM private key (PKCS#8, e.g. from openssl genpkey) instead of a secret
  --kid <kid>          the key id header, for gateways that verify with a JWK set ([A-Za-z0-9._~-], up to 128)
  --iss <issuer>       the issuer claim (gateways with GW_JWT_ISSUER require it to match)
  --aud <list>         comma-separated audiences (gateways with GW_JWT_AUDIENCE require one of theirs)
  --dotenv <path>      the .env of the gateways you target, e.g. the one docker compose reads (default: ./.env)
  -h, --help           this text

The signing key (stderr says which):
  0. --private-key <file>, when given;
  1. GW_JWT_SECRET from the environment;
  2. else GW_JWT_SECRET from the env file (./.env, or --dotenv);
  3. else the development secret, only when NODE_ENV is development (yarn token's default) and the env file does
     not set NODE_ENV=production: only gateways started with NODE_ENV=development and no GW_JWT_SECRET (yarn dev)
     accept that token.
  Otherwise it refuses: export the GW_JWT_SECRET your gateways use, or pass --dotenv. A secret must be at least
  ${MIN_JWT_SECRET_BYTES} bytes.

Exit status: 0 token printed, 1 no usable secret, 2 wrong command line.`;

const command = {
  name: 'token',
  usage: USAGE,
  options: {
    sub: { type: 'string' },
    groups: { type: 'string' },
    role: { type: 'string' },
    ttl: { type: 'string' },
    alg: { type: 'string' },
    'private-key': { type: 'string' },
    kid: { type: 'string' },
    iss: { type: 'string' },
    aud: { type: 'string' },
    dotenv: { type: 'string' },
  },
} as const;

const TTL_UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** "30m", "1h", "2d"… as seconds. */
function ttlSeconds(value: string): number {
  const match = /^([1-9]\d{0,5})([smhdw])$/.exec(value);
  if (!match) throw new UsageError(`--ttl "${value}" is not a duration: a whole number and s, m, h, d or w, e.g. 30m, 1h, 2d`);
  return Number(match[1]) * TTL_UNIT_SECONDS[match[2]!]!;
}

interface EnvFile {
  path: string;
  /** Undefined when the default ./.env does not exist. */
  vars: Record<string, string> | undefined;
}

function readEnvFile(given: string | undefined): EnvFile {
  const path = resolve(given ?? '.env');
  try {
    return { path, vars: dotenv.parse(readFileSync(path)) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (given === undefined && code === 'ENOENT') return { path, vars: undefined };
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (code ?? 'cannot be read');
    if (given !== undefined) throw new UsageError(`--dotenv ${given}: ${reason}`, { cause: err });
    throw new Error(`cannot read ${path}: ${reason}`, { cause: err });
  }
}

/** The secret by the rule at the top of this file, and the line that says where it comes from. */
function signingSecret(env: Record<string, string | undefined>, file: EnvFile): { secret: string; notice: string } {
  // An empty value means "unset", as for the gateway (src/config).
  const set = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);
  const strong = (secret: string, from: string) => {
    if (Buffer.byteLength(secret) < MIN_JWT_SECRET_BYTES) throw new Error(`GW_JWT_SECRET from ${from} is too weak: it must be at least ${MIN_JWT_SECRET_BYTES} bytes`);
    return secret;
  };
  const fromEnv = set(env.GW_JWT_SECRET);
  if (fromEnv !== undefined) return { secret: strong(fromEnv, 'the environment'), notice: 'signing with GW_JWT_SECRET from the environment' };
  const fromFile = set(file.vars?.GW_JWT_SECRET);
  if (fromFile !== undefined) return { secret: strong(fromFile, file.path), notice: `signing with GW_JWT_SECRET from ${file.path}` };

  const searched = file.vars ? `not in the environment nor in ${file.path}` : `not in the environment, and no ${file.path}`;
  const fileEnv = set(file.vars?.NODE_ENV);
  const nodeEnv = set(env.NODE_ENV) ?? fileEnv;
  const why =
    fileEnv === 'production' ? `${file.path} sets NODE_ENV=production` : nodeEnv === undefined ? 'NODE_ENV is not set' : nodeEnv !== 'development' ? `NODE_ENV is ${nodeEnv}` : undefined;
  if (why !== undefined) {
    throw new Error(`no GW_JWT_SECRET (${searched}) and ${why}: export the GW_JWT_SECRET your gateways use, or pass --dotenv <the .env they read>`);
  }
  return {
    secret: DEV_JWT_SECRET,
    notice: `warning: signing with the DEVELOPMENT secret (NODE_ENV=development, GW_JWT_SECRET ${searched}); only gateways started with NODE_ENV=development and no GW_JWT_SECRET (yarn dev) accept this token`,
  };
}

const ALGORITHMS: readonly string[] = [...HMAC_ALGORITHMS, ...ASYMMETRIC_ALGORITHMS];

/** --alg as one of the algorithms the gateway verifies, or undefined when not given. */
function algorithmOption(value: string | undefined): Algorithm | undefined {
  if (value === undefined) return undefined;
  if (!ALGORITHMS.includes(value)) throw new UsageError(`--alg must be one of ${ALGORITHMS.join(', ')} (got "${value}")`);
  return value as Algorithm;
}

/** The key in --private-key and the algorithm to sign with: --alg when the key allows it, else the key type's first. */
function privateKey(file: string, alg: Algorithm | undefined): { key: KeyObject; alg: Algorithm } {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`--private-key ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (code ?? 'cannot be read')}`, { cause: err });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new UsageError(`--private-key ${file}: not a PEM private key (PKCS#8: -----BEGIN PRIVATE KEY-----)`);
  }
  const pinned = algorithmsForKey(key);
  if ('problem' in pinned) throw new UsageError(`--private-key ${file} ${pinned.problem}`);
  if (alg !== undefined && !pinned.algorithms.includes(alg)) {
    throw new UsageError(`--alg ${alg} does not fit the key in ${file}: it signs with ${pinned.algorithms.join(', ')}`);
  }
  return { key, alg: alg ?? pinned.algorithms[0]! };
}

run(command, async () => {
  const { values } = parseCommandLine(command);
  if (values.sub === undefined || values.sub === '') throw new UsageError('missing --sub <userId>');
  const role = roleSchema.safeParse(values.role ?? 'client');
  if (!role.success) throw new UsageError(`--role must be client, service or admin (got "${values.role}")`);
  const ttl = ttlSeconds(values.ttl ?? '1h');
  const groups = (values.groups ?? '').split(',').map((g) => g.trim()).filter(Boolean);
  // The claims the gateway will check, checked here first so a bad --sub or --groups is a usage error, not a rejected token.
  const claims = tokenClaimsSchema.safeParse({ sub: values.sub, exp: 0, role: role.data, groups });
  if (!claims.success) {
    const issue = claims.error.issues[0];
    throw new UsageError(`--${String(issue?.path[0] ?? 'sub')}: ${issue?.message ?? 'invalid value'}`);
  }
  if (values.kid !== undefined && !KID_PATTERN.test(values.kid)) throw new UsageError('--kid must match [A-Za-z0-9._~-]{1,128}: gateways refuse other key ids');
  if (values.iss === '') throw new UsageError('--iss needs a value');
  const audiences = values.aud === undefined ? undefined : values.aud.split(',').map((a) => a.trim()).filter(Boolean);
  if (audiences?.length === 0) throw new UsageError('--aud lists no audience');
  const alg = algorithmOption(values.alg);
  const extra = { kid: values.kid, iss: values.iss, aud: audiences?.length === 1 ? audiences[0] : audiences };

  let token: string;
  if (values['private-key'] !== undefined) {
    const file = values['private-key'];
    const signing = privateKey(file, alg);
    process.stderr.write(`token: signing with the private key in ${file} (${signing.alg})\n`);
    token = await mintToken({ sub: values.sub, groups, role: role.data, ttl, alg: signing.alg, ...extra }, signing.key);
  } else {
    if (alg !== undefined && !(HMAC_ALGORITHMS as readonly string[]).includes(alg)) throw new UsageError(`--alg ${alg} needs --private-key <file>: a secret signs only HS256, HS384 or HS512`);
    const { secret, notice } = signingSecret(processEnvironment(), readEnvFile(values.dotenv));
    process.stderr.write(`token: ${notice}\n`);
    token = await mintToken({ sub: values.sub, groups, role: role.data, ttl, alg: alg ?? 'HS256', ...extra }, new TextEncoder().encode(secret));
  }
  process.stdout.write(`${token}\n`);
});
