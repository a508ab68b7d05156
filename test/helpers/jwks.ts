// A real JWK set endpoint on 127.0.0.1 for the key tests: serves a set it can rotate, and misbehaves on demand (down,
// resetting connections, slow headers or body, garbage, an endless stream) while counting what it received.
// Key pairs for tokens are generated here too. Every server is closed after each test.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, type KeyLike } from 'jose';
import { afterEach } from 'vitest';
import type { Algorithm } from '../../src/auth/keys';

export interface SigningKey {
  kid: string;
  alg: Algorithm;
  privateKey: KeyLike;
  publicKey: KeyLike;
  /** The public half as a JWK, with kid, alg and use. */
  jwk: JWK;
}

/** A fresh key pair for `alg`, named `kid`. */
export async function signingKey(kid: string, alg: Algorithm = 'RS256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  return { kid, alg, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/**
 * How the endpoint answers. `keys`: the set; `down`: not listening (connection refused); `reset`: accepts and drops
 * every connection; `hang`: never answers; `slowHeaders`: answers nothing for `delayMs`; `slowBody`: headers and a first byte, then nothing for
 * `delayMs`; `garbage`: `body` with `status` (200) and `headers`; `huge`: an endless (up to `bytes`) chunked body.
 */
export type Behaviour =
  | { mode: 'keys' }
  | { mode: 'down' }
  | { mode: 'reset' }
  | { mode: 'hang' }
  | { mode: 'slowHeaders'; delayMs: number }
  | { mode: 'slowBody'; delayMs: number }
  | { mode: 'garbage'; body: string; status?: number; headers?: Record<string, string> }
  | { mode: 'huge'; bytes: number };

/** What a JwksServer saw, live. */
export interface JwksStats {
  /** HTTP requests received. */
  requests: number;
  /** TCP connections accepted (`reset` drops them before any request). */
  connections: number;
  /** Requests being answered right now, and the most there ever were at once. */
  open: number;
  maxOpen: number;
  /** Bytes of the last `huge` body written, and whether its connection closed before the whole body was sent. */
  hugeWritten: number;
  hugeCutOff: boolean;
}

export interface JwksServer {
  url: string;
  readonly stats: Readonly<JwksStats>;
  /** The set served in `keys` mode (and by the slow modes when they finally answer) from now on, `extra` JWKs included. */
  serve(keys: SigningKey[], extra?: JWK[]): void;
  behave(behaviour: Behaviour): Promise<void>;
}

const servers: { server: Server; sockets: Set<Socket>; timers: Set<NodeJS.Timeout> }[] = [];

afterEach(async () => {
  for (const { server, sockets, timers } of servers.splice(0)) {
    for (const t of timers) clearTimeout(t);
    for (const s of sockets) s.destroy();
    if (server.listening) await new Promise((resolve) => server.close(resolve));
  }
});

const CHUNK = Buffer.alloc(64 * 1024, 'a');

export async function startJwksServer(keys: SigningKey[]): Promise<JwksServer> {
  let set: JWK[] = keys.map((k) => k.jwk);
  let behaviour: Behaviour = { mode: 'keys' };
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const stats = { requests: 0, connections: 0, open: 0, maxOpen: 0, hugeWritten: 0, hugeCutOff: false };
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const streamHuge = (res: ServerResponse, total: number) => {
    stats.hugeWritten = 0;
    stats.hugeCutOff = false;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.once('close', () => (stats.hugeCutOff = !res.writableFinished));
    const pump = () => {
      while (stats.hugeWritten < total && !res.destroyed) {
        stats.hugeWritten += CHUNK.length;
        if (!res.write(CHUNK)) return void res.once('drain', pump);
      }
      if (!res.destroyed) res.end();
    };
    res.write('{"keys":[{"kty":"RSA","n":"');
    pump();
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    stats.requests++;
    stats.open++;
    stats.maxOpen = Math.max(stats.maxOpen, stats.open);
    res.once('close', () => stats.open--);
    req.resume();
    const b = behaviour;
    switch (b.mode) {
      case 'hang':
        return;
      case 'slowHeaders':
        return later(b.delayMs, () => res.end(JSON.stringify({ keys: set })));
      case 'slowBody':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{');
        return later(b.delayMs, () => res.end(`"keys":${JSON.stringify(set)}}`));
      case 'garbage':
        return void res.writeHead(b.status ?? 200, { 'content-type': 'application/json', ...b.headers }).end(b.body);
      case 'huge':
        return streamHuge(res, b.bytes);
      default:
        return void res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify({ keys: set }));
    }
  };

  const server = createServer(handle);
  server.on('connection', (socket) => {
    stats.connections++;
    if (behaviour.mode === 'reset') return void socket.destroy();
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  servers.push({ server, sockets, timers });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    stats,
    serve: (next, extra = []) => {
      set = [...next.map((k) => k.jwk), ...extra];
    },
    behave: async (next) => {
      behaviour = next;
      // A kept-alive connection would carry the next request past a reset.
      if (next.mode === 'reset') for (const s of sockets) s.destroy();
      if (next.mode === 'down' && server.listening) {
        for (const s of sockets) s.destroy();
        await new Promise((resolve) => server.close(resolve));
      } else if (next.mode !== 'down' && !server.listening) {
        // Back on the same port: the gateway's GW_JWKS_URL does not change.
        await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      }
    },
  };
}
