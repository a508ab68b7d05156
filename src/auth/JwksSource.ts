// The platform's JWK set (GW_JWKS_URL): fetched at start and every GW_JWKS_REFRESH_MS in the background, refetched when
// a token names a key the set lacks (at most once per GW_JWKS_COOLDOWN_MS), bounded in time and size, and kept when a
// fetch fails. Key selection within the set (kid, alg, kty, crv, use) is jose's createLocalJWKSet.
//
// Why not jose 5's createRemoteJWKSet (read in node_modules/jose/dist/node/cjs/jwks/remote.js, runtime/fetch_jwks.js):
// - its timeout covers only the response headers: a server that sends headers and then trickles the body holds the
//   fetch, and every identify waiting on it, forever;
// - it reads the whole body with no size bound: a multi-megabyte (or endless) answer is buffered in memory;
// - a failed fetch sets no cooldown: an unknown `kid` while the endpoint is down refetches on every identify;
// - once the set is older than cacheMaxAge every identify awaits a refetch, and fails while the endpoint is down even
//   for keys it holds.
// Here a fetch has one deadline for the whole request, a byte cap that aborts the transfer, no redirects, and one
// fetch at most in flight; identifies with a held key never wait for the network. The deadline is a plain timer that
// aborts the fetch's controller: on Node 20, AbortSignal.timeout() joined through AbortSignal.any() can be garbage
// collected before it fires, and the fetch then hangs (seen in this suite; reproduced with --expose-gc).
//
// Keys are looked up in the set fetched from this source's URL and nowhere else: one verifier has one source, and the
// set is replaced whole. A cache keyed by `kid` alone, shared across issuers or endpoints, lets a token signed with
// one issuer's key pass as another's whenever their kids collide (CVE-2026-49998); there is no such cache here.
import { createLocalJWKSet, errors, type JWK, type JWSHeaderParameters, type KeyLike } from 'jose';
import { z } from 'zod';
import type { KeySource } from '../config';
import { limits } from '../config/limits';
import type { Logger } from '../utils/logger';

/**
 * `ok`: the last fetch succeeded. `stale`: it failed, and the last good set is still used (until a fetch succeeds).
 * `failing`: no set was ever fetched and the last attempt failed. `loading`: the first fetch has not finished yet.
 */
export type KeysState = 'ok' | 'stale' | 'failing' | 'loading';

/** What /health reports about the key source. */
export interface KeysHealth {
  source: KeySource['kind'];
  state: KeysState;
  /** Usable keys held (0 while no set has been fetched). */
  keys: number;
  /** When the set in use was fetched (JWK set only). */
  fetchedAt?: string;
  /** Why the last fetch failed, while it has not succeeded since (JWK set only). */
  lastError?: string;
}

/** A key lookup that failed; its message is safe to show a client (it names the variable, never the token or its kid). */
export class KeyLookupError extends Error {
  override readonly name = 'KeyLookupError';
}

type JwksKeys = Extract<KeySource, { kind: 'jwks' }>;

/** Key types a JWK set may contribute; `oct` (shared secrets) and anything else are dropped. */
const ASYMMETRIC_KTY = new Set(['RSA', 'EC', 'OKP']);

const jwkSetSchema = z.object({
  keys: z.array(z.looseObject({ kty: z.string() })).max(limits.jwksMaxKeys),
});

interface HeldSet {
  lookup: ReturnType<typeof createLocalJWKSet>;
  keys: number;
  /** The set's kids, to tell a kid that is missing from one whose key is of another type than the token's `alg`. */
  kids: Set<string>;
  fetchedAt: number;
}

/** A fetch that went wrong in a way worth one short line (no body text, no token). */
class FetchProblem extends Error {}

export class JwksSource {
  private held: HeldSet | null = null;
  /** Why the last fetch failed; null once one succeeds. */
  private lastError: string | null = null;
  private lastFetchEndedAt = Number.NEGATIVE_INFINITY;
  private inFlight: Promise<void> | null = null;
  private controller: AbortController | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly options: JwksKeys,
    private readonly log: Logger,
  ) {}

  /** The first fetch; start-up does not wait for it (identifies that need keys before it ends wait for it instead). */
  start(): void {
    void this.fetchNow();
  }

  /** Stops the refresh timer and aborts a fetch in flight. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.controller?.abort(new FetchProblem('stopped'));
  }

  /** The key for a token's header, for jose's jwtVerify. Throws KeyLookupError with a message for the client. */
  async key(header: JWSHeaderParameters): Promise<KeyLike> {
    if (this.held === null) {
      await this.refetch();
      if (this.held === null) throw new KeyLookupError(`the key set at GW_JWKS_URL could not be fetched (${this.lastError ?? 'not fetched yet'})`);
    }
    const found = await this.lookup(this.held, header);
    if (found) return found;
    await this.refetch();
    const again = await this.lookup(this.held, header);
    if (again) return again;
    if (header.kid !== undefined && this.held.kids.has(header.kid)) {
      throw new KeyLookupError(`the key with the token's "kid" in the key set at GW_JWKS_URL does not fit the token's "alg" (a key of another type)`);
    }
    if (this.lastError !== null) throw new KeyLookupError(`no key for the token's "kid", and the key set at GW_JWKS_URL could not be fetched (${this.lastError})`);
    throw new KeyLookupError(`no key for the token's "kid" in the key set at GW_JWKS_URL`);
  }

  health(): KeysHealth {
    const held = this.held;
    const state: KeysState = held === null ? (this.lastError === null ? 'loading' : 'failing') : this.lastError === null ? 'ok' : 'stale';
    return {
      source: 'jwks',
      state,
      keys: held?.keys ?? 0,
      ...(held ? { fetchedAt: new Date(held.fetchedAt).toISOString() } : {}),
      ...(this.lastError !== null ? { lastError: this.lastError } : {}),
    };
  }

  /** The matching key, or null when the set has none; other failures are KeyLookupErrors. */
  private async lookup(held: HeldSet, header: JWSHeaderParameters): Promise<KeyLike | null> {
    try {
      return await held.lookup(header);
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey) return null;
      if (err instanceof errors.JWKSMultipleMatchingKeys) throw new KeyLookupError('the token has no "kid" and several keys of the set at GW_JWKS_URL match it');
      throw new KeyLookupError('the key for the token in the set at GW_JWKS_URL is not a usable public key');
    }
  }

  /**
   * Joins the fetch in flight, or starts one unless the last one ended less than the cooldown ago: a burst of tokens
   * with unknown kids costs one fetch per cooldown, whatever the endpoint does.
   */
  private refetch(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    if (this.closed || Date.now() - this.lastFetchEndedAt < this.options.cooldownMs) return Promise.resolve();
    return this.fetchNow();
  }

  /** Fetches the set once; never rejects. On success the set is replaced whole, on failure the last good one stays. */
  private fetchNow(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const controller = new AbortController();
    this.controller = controller;
    const run = async () => {
      let failure: string | null = null;
      try {
        this.held = parseKeySet(await this.download(controller));
      } catch (err) {
        failure = describeFailure(err);
      }
      this.inFlight = null;
      this.controller = null;
      this.lastFetchEndedAt = Date.now();
      if (this.closed) return;
      this.lastError = failure;
      if (failure !== null) {
        this.log.warn({ url: this.options.url.href, err: failure, keeping: this.held ? 'the last good key set' : 'no key set yet' }, 'JWK set fetch failed');
      }
      // After a failure, retry sooner than a refresh: identifies with unknown kids are refused until a fetch succeeds.
      this.schedule(failure === null ? this.options.refreshMs : Math.min(this.options.cooldownMs, this.options.refreshMs));
    };
    this.inFlight = run();
    return this.inFlight;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => void this.fetchNow(), delayMs);
  }

  /** The body, read within the deadline and up to the byte cap; either breach aborts the transfer. */
  private async download(controller: AbortController): Promise<string> {
    const { timeoutMs } = this.options;
    const deadline = setTimeout(() => controller.abort(new FetchProblem(`timed out after ${timeoutMs} ms (GW_JWKS_TIMEOUT_MS)`)), timeoutMs);
    try {
      return await this.read(controller);
    } finally {
      clearTimeout(deadline);
    }
  }

  private async read(controller: AbortController): Promise<string> {
    const { url, maxBytes } = this.options;
    const res = await fetch(url, { signal: controller.signal, redirect: 'error', headers: { accept: 'application/jwk-set+json, application/json' } });
    const tooLarge = () => {
      const problem = new FetchProblem(`the body is over ${maxBytes} bytes (GW_JWKS_MAX_BYTES)`);
      controller.abort(problem);
      return problem;
    };
    if (res.status !== 200) {
      controller.abort();
      throw new FetchProblem(`HTTP ${res.status}`);
    }
    if (res.body === null) throw new FetchProblem('no body');
    if (Number(res.headers.get('content-length') ?? 0) > maxBytes) throw tooLarge();
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = res.body.getReader();
    // Node 20's fetch can leave a pending body read unsettled after an abort (its abort path reaches the body through a
    // weak reference to the Response; seen in this suite as a fetch that outlived its deadline). So the abort cancels
    // the reader itself, and a read that returns after the abort is the abort.
    const cancel = () => void reader.cancel().catch(() => undefined);
    controller.signal.addEventListener('abort', cancel, { once: true });
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (controller.signal.aborted) throw controller.signal.reason;
        if (done) break;
        size += value.byteLength;
        if (size > maxBytes) throw tooLarge();
        chunks.push(value);
      }
    } finally {
      controller.signal.removeEventListener('abort', cancel);
    }
    return Buffer.concat(chunks).toString('utf8');
  }
}

/** A JWK set with at least one usable public key, ready for lookups; throws a FetchProblem saying what is wrong. */
function parseKeySet(text: string): HeldSet {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new FetchProblem('the body is not JSON');
  }
  const parsed = jwkSetSchema.safeParse(json);
  if (!parsed.success) throw new FetchProblem(`the body is not a JWK set ({"keys": [...]}, at most ${limits.jwksMaxKeys} keys)`);
  // Private members ("d") would make jose import a private key; a set that publishes one is not trusted for it.
  const usable = parsed.data.keys.filter((k) => ASYMMETRIC_KTY.has(k.kty) && !('d' in k)) as JWK[];
  if (usable.length === 0) throw new FetchProblem('the set holds no public RSA, EC or OKP key');
  const kids = new Set(usable.flatMap((k) => (typeof k.kid === 'string' ? [k.kid] : [])));
  return { lookup: createLocalJWKSet({ keys: usable }), keys: usable.length, kids, fetchedAt: Date.now() };
}

/** One short line for a failed fetch: what went wrong, never the body. */
function describeFailure(err: unknown): string {
  if (err instanceof FetchProblem) return err.message;
  const e = err as Error & { cause?: NodeJS.ErrnoException & { message?: string } };
  if (e?.name === 'AbortError' && e.cause instanceof FetchProblem) return e.cause.message;
  const code = e?.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND') return 'host not found';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  if (/redirect/i.test(e?.cause?.message ?? '')) return 'the server answered with a redirect (not followed)';
  return e?.cause?.message ?? e?.message ?? 'failed';
}
