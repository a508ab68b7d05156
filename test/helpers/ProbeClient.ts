// ProbeClient: a small promise-based protocol v1 client over `ws` for the integration tests: it exposes raw frames and waits on them.
import WebSocket from 'ws';

export interface ServerEnvelope {
  type: string;
  data?: Record<string, unknown>;
  replyTo?: string;
  ts: number;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

type Match = (env: ServerEnvelope) => boolean;

interface Waiter {
  match: Match;
  resolve: (env: ServerEnvelope) => void;
}

const DEFAULT_WAIT_MS = 3000;

/** Matches the presence_update that says `userId` came UP (a sentinel user's, for `before`). */
export function presenceUp(userId: string): Match {
  return (env) => env.type === 'presence_update' && env.data?.userId === userId && env.data.status === 'UP';
}

export class ProbeClient {
  /** Unconsumed envelopes, oldest first. */
  private readonly inbox: ServerEnvelope[] = [];
  private readonly waiters: Waiter[] = [];
  private nextId = 1;
  readonly closed: Promise<CloseInfo>;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (raw) => this.deliver(JSON.parse(String(raw)) as ServerEnvelope));
    this.closed = new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
  }

  /** Opens a connection and resolves once the socket is open (the `hello` envelope is left in the inbox). */
  static connect(url: string, options?: WebSocket.ClientOptions): Promise<ProbeClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, options);
      const client = new ProbeClient(socket);
      socket.once('open', () => resolve(client));
      socket.once('error', reject);
    });
  }

  private deliver(env: ServerEnvelope): void {
    const i = this.waiters.findIndex((w) => w.match(env));
    if (i >= 0) {
      const [waiter] = this.waiters.splice(i, 1);
      waiter!.resolve(env);
    } else {
      this.inbox.push(env);
    }
  }

  /** Resolves with (and consumes) the first envelope of `type` (or matching `match`), already received or still to come. */
  next(type: string | Match, timeoutMs = DEFAULT_WAIT_MS): Promise<ServerEnvelope> {
    const match: Match = typeof type === 'string' ? (env) => env.type === type : type;
    const i = this.inbox.findIndex(match);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]!);
    return this.wait(match, timeoutMs, (env) => env, typeof type === 'string' ? `"${type}"` : 'matching');
  }

  /**
   * Consumes everything up to and including the first envelope that matches `sentinel`, and resolves with what came
   * before it, in order. The way to assert that something did NOT arrive: make something arrive that must come
   * after it (a later message on the same path, or the reply to a request), then look at what came first.
   */
  before(sentinel: Match, timeoutMs = DEFAULT_WAIT_MS): Promise<ServerEnvelope[]> {
    const i = this.inbox.findIndex(sentinel);
    if (i >= 0) return Promise.resolve(this.inbox.splice(0, i + 1).slice(0, i));
    // Taken when the sentinel arrives, before any later envelope of the same read can join the inbox.
    return this.wait(sentinel, timeoutMs, () => this.inbox.splice(0), 'sentinel');
  }

  /**
   * A request/reply barrier: sends a heartbeat and resolves with every envelope that arrived before its reply. The
   * gateway writes to a socket in order, so whatever it wrote to this connection before handling the heartbeat is here.
   */
  barrier(): Promise<ServerEnvelope[]> {
    const id = `barrier-${this.nextId++}`;
    this.send('heartbeat', {}, id);
    return this.before((env) => env.replyTo === id);
  }

  /**
   * [userId, status] of the presence_updates received before the UP of `sentinel` (a user a test makes join after the
   * event it checks, on the same instance), which is consumed.
   */
  async presenceBefore(sentinel: string): Promise<unknown[][]> {
    const seen = await this.before(presenceUp(sentinel));
    return seen.filter((e) => e.type === 'presence_update').map((e) => [e.data!.userId, e.data!.status]);
  }

  private wait<T>(match: Match, timeoutMs: number, onMatch: (env: ServerEnvelope) => T, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve: (env) => {
          clearTimeout(timer);
          resolve(onMatch(env));
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`no ${what} envelope within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Unconsumed envelopes of `type` received so far (not consumed). */
  pending(type: string): ServerEnvelope[] {
    return this.inbox.filter((env) => env.type === type);
  }

  /** Consumes and returns every envelope received and not yet consumed. */
  drain(): ServerEnvelope[] {
    return this.inbox.splice(0);
  }

  send(type: string, data?: unknown, id?: string): void {
    this.socket.send(JSON.stringify({ type, id, data }));
  }

  sendRaw(frame: string | Buffer, binary = false): void {
    this.socket.send(frame, { binary });
  }

  /** Sends with a fresh `id` and resolves with the envelope that replies to it. */
  request(type: string, data?: unknown, timeoutMs = DEFAULT_WAIT_MS): Promise<ServerEnvelope> {
    const id = `r${this.nextId++}`;
    this.send(type, data, id);
    return this.next((env) => env.replyTo === id, timeoutMs);
  }

  /** Sends `identify` and resolves with `ready` (or the `error` that replaced it). */
  identify(token: string, groups?: string[], meta?: Record<string, unknown>): Promise<ServerEnvelope> {
    return this.request('identify', { token, groups, meta });
  }

  close(code = 1000): Promise<CloseInfo> {
    this.socket.close(code);
    return this.closed;
  }
}
