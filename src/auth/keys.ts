// Which JWT algorithms a key may verify (or sign), decided by the key's own type: the algorithm is never taken from the
// token alone, so an HS256 token "signed" with the public key's bytes, or `alg: none`, is refused before any key is used.
import { X509Certificate, createPublicKey, type KeyObject } from 'node:crypto';

export const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
export const RSA_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const;
export const PSS_ALGORITHMS = ['PS256', 'PS384', 'PS512'] as const;
/** What a JWK set may sign with: every asymmetric algorithm we verify, never HS* (an `oct` key in a published set is a mistake). */
export const ASYMMETRIC_ALGORITHMS = [...RSA_ALGORITHMS, 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

export type Algorithm = (typeof HMAC_ALGORITHMS)[number] | (typeof ASYMMETRIC_ALGORITHMS)[number];

export const MIN_RSA_BITS = 2048;

/** A `kid` is looked up only when it looks like one: no path, URL or control characters reach a lookup or a log. */
export const KID_PATTERN = /^[A-Za-z0-9._~-]{1,128}$/;

const EC_CURVES: Record<string, Algorithm> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };
const PSS_HASHES: Record<string, Algorithm> = { sha256: 'PS256', 'sha-256': 'PS256', sha384: 'PS384', 'sha-384': 'PS384', sha512: 'PS512', 'sha-512': 'PS512' };

/** The algorithms an asymmetric key (public or private) is pinned to, or why it cannot be used. */
export function algorithmsForKey(key: KeyObject): { algorithms: Algorithm[] } | { problem: string } {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss': {
      const bits = details.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) return { problem: `is an RSA key of ${bits} bits: at least ${MIN_RSA_BITS} are required` };
      if (key.asymmetricKeyType === 'rsa') return { algorithms: [...RSA_ALGORITHMS] };
      // An RSA-PSS key may be restricted to one hash in its parameters: then only that PS* algorithm.
      const hash = details.hashAlgorithm === undefined ? undefined : PSS_HASHES[details.hashAlgorithm.toLowerCase()];
      if (details.hashAlgorithm !== undefined && hash === undefined) return { problem: 'is an RSA-PSS key restricted to an unsupported hash' };
      return { algorithms: hash === undefined ? [...PSS_ALGORITHMS] : [hash] };
    }
    case 'ec': {
      const alg = details.namedCurve === undefined ? undefined : EC_CURVES[details.namedCurve];
      if (alg === undefined) return { problem: 'is an EC key on an unsupported curve (P-256, P-384 and P-521 are supported)' };
      return { algorithms: [alg] };
    }
    case 'ed25519':
    case 'ed448':
      return { algorithms: ['EdDSA'] };
    default:
      return { problem: `is a ${key.asymmetricKeyType ?? 'symmetric'} key: RSA (at least ${MIN_RSA_BITS} bits), RSA-PSS, EC (P-256, P-384, P-521), Ed25519 or Ed448 are supported` };
  }
}

/** Largest key file read: a PEM public key or certificate is a few KiB. */
export const MAX_KEY_FILE_BYTES = 64 * 1024;

/**
 * A PEM public key (SPKI, `-----BEGIN PUBLIC KEY-----`) or an X.509 certificate (its public key), with the algorithms
 * it is pinned to; or why not. The problem never quotes the text, which may be a private key put there by mistake.
 */
export function parsePublicKeyPem(pem: string): { key: KeyObject; algorithms: Algorithm[] } | { problem: string } {
  // node:crypto would derive a public key from a private one; a private key on a verifying host is a leak to report.
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) return { problem: 'holds a private key: give the public key (openssl pkey -in private.pem -pubout)' };
  let key: KeyObject;
  try {
    if (/-----BEGIN CERTIFICATE-----/.test(pem)) key = new X509Certificate(pem).publicKey;
    else if (/-----BEGIN PUBLIC KEY-----/.test(pem)) key = createPublicKey({ key: pem, format: 'pem' });
    else return { problem: 'is not a PEM public key (-----BEGIN PUBLIC KEY-----) or certificate' };
  } catch {
    return { problem: 'is not a valid PEM public key or certificate' };
  }
  const pinned = algorithmsForKey(key);
  return 'problem' in pinned ? pinned : { key, algorithms: pinned.algorithms };
}
