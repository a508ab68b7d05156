// GatewayClient: the SDK web and mobile apps use. Connects and identifies (fetching a token each time), heartbeats on
// the server's interval, reconnects with exponential backoff and full jitter, resumes its session so a short drop
// loses nothing, and keeps a local presence map per group. Works with the browser's WebSocket or `ws` in Node.
import { CloseCode, type ErrorCodeName } from '../types/codes';
import type { Member } from '../types/domain';
import type { ServerSignals } from '../types/signals';

/** The part of the WebSocket API the client needs (browsers, React Native and `ws` all provide it). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export type ConnectionState = 'connecting' | 'ready' | 'reconnecting' | 'closed';

export type DataUpdate = ServerSignals['data_update'] & { seq: number };
export type PresenceUpdate = ServerSignals['presence_update'] & { seq: number };
export type Signal = ServerSignals['signal'];

export interface ClientEvents {
  state: ConnectionState;
  /** Each successful identify: `resumed` false means a fresh session (refetch your state). */
  ready: { sessionId: string; connectionId: string; resumed: boolean };
  data: DataUpdate;
  presence: PresenceUpdate;
  signal: Signal;
  /** An `error` envelope that answered no request of ours, or a close that ends the client (4003, 4011, 4029, giving up). */
  error: { code: ErrorCodeName | 'CLOSED' | 'DISCONNECTED'; message: string };
}

export interface GatewayClientOptions {
  /**
   * e.g. wss://host/rt. A function is called before every connect, so a client that knows several gateway addresses
   * can move to another one when its instance goes away (behind one load-balanced address, a string is all it needs).
   */
  url: string | (() => string);
  /** Called before every identify (first connect and every reconnect), so an expired token can be replaced. */
  getToken(): string | Promise<string>;
  /** Groups to be in; kept across reconnects and re-joined when a fresh session starts. */
  groups?: string[];
  meta?: Record<string, unknown>;
  /** Defaults to globalThis.WebSocket; pass `ws`'s WebSocket in Node 20. */
  WebSocket?: WebSocketConstructor;
  /** First reconnect delay cap (default 500 ms); doubles per attempt up to maxBackoffMs (default 30 000 ms); full jitter. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Reconnect attempts in a row (without reaching `ready`) before the client gives up: it then closes, and connect()
   * and every pending request reject with DISCONNECTED. Default: never give up.
   */
  maxReconnectAttempts?: number;
  /** How long a request waits for its reply (default 10 000 ms). */
  requestTimeoutMs?: number;
}

/**
 * A request the gateway refused (`code` from the protocol), or one that could not complete: `DISCONNECTED` (the
 * connection was lost, or the client gave up reconnecting), `TIMEOUT`, `CLOSED` (close() was called, or the gateway
 * ended the client for good). `closeCode` is the WebSocket close code that ended it, when one did.
 */
export class GatewayError extends Error {
  constructor(
    readonly code: ErrorCodeName | 'DISCONNECTED' | 'TIMEOUT' | 'CLOSED',
    message: string,
    readonly retryAfterMs?: number,
    readonly closeCode?: number,
  ) {
    super(message);
    this.name = 'GatewayError';
  }
}

interface Pending {
  resolve(data: Record<string, unknown>): void;
  reject(err: GatewayError): void;
  timer: ReturnType<typeof setTimeout>;
}

interface Envelope {
  type: string;
  data?: Record<string, unknown>;
  replyTo?: string;
  seq?: number;
}

type Listener<K extends keyof ClientEvents> = (value: ClientEvents[K]) => void;

/** Close codes after which reconnecting would not help, and the error connect() and pending requests reject with. */
const FINAL_CLOSES = new Map<number, GatewayError['code']>([
  [CloseCode.AUTH_FAILED.code, 'AUTH_FAILED'],
  [CloseCode.SESSION_TAKEN_OVER.code, 'CLOSED'],
  [CloseCode.TOO_MANY_CONNECTIONS.code, 'LIMIT_EXCEEDED'],
]);
const OPEN = 1;

export class GatewayClient {
  private socket: WebSocketLike | null = null;
  private stateValue: ConnectionState = 'closed';
  private readonly listeners = new Map<keyof ClientEvents, Set<Listener<keyof ClientEvents>>>();
  private readonly pending = new Map<string, Pending>();
  private readonly wanted: Set<string>;
  private readonly presenceMap = new Map<string, Map<string, Member>>();
  private nextId = 1;
  private attempt = 0;
  private stopped = true;
  private session: { id: string; token: string } | null = null;
  private lastSeq = 0;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private readyWaiters: { resolve(): void; reject(err: GatewayError): void }[] = [];
  private connectionIdValue: string | null = null;
  /** From the server's hello. */
  private heartbeatIntervalMs = 10_000;
  private heartbeatTimeoutMs = 25_000;
  private lastMessageAt = 0;

  constructor(private readonly options: GatewayClientOptions) {
    this.wanted = new Set(options.groups ?? []);
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  get connectionId(): string | null {
    return this.connectionIdValue;
  }

  get sessionId(): string | null {
    return this.session?.id ?? null;
  }

  /** Members of a group as this client last heard, one per user. */
  members(group: string): Member[] {
    return [...(this.presenceMap.get(group)?.values() ?? [])];
  }

  on<K extends keyof ClientEvents>(event: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as Listener<keyof ClientEvents>);
    return () => set.delete(listener as Listener<keyof ClientEvents>);
  }

  /**
   * Connects (and keeps reconnecting until close()); resolves at the first `ready`. Rejects with a GatewayError when
   * the client ends before that: close(), a close after which reconnecting cannot help (4003, 4011, 4029), or giving up.
   */
  connect(): Promise<void> {
    if (this.stopped) {
      this.stopped = false;
      this.open();
    }
    return this.whenReady();
  }

  /** Closes for good with 1000: the gateway ends the session at once (your user goes DOWN where this was their last session). */
  close(): void {
    this.socket?.close(CloseCode.NORMAL.code, 'client closed');
    this.socket = null;
    this.end(new GatewayError('CLOSED', 'the client was closed', undefined, CloseCode.NORMAL.code));
  }

  async subscribe(group: string): Promise<Member[]> {
    this.wanted.add(group);
    const data = await this.request('subscribe', { group });
    this.presenceMap.set(group, new Map((data.members as Member[]).map((m) => [m.userId, m])));
    return data.members as Member[];
  }

  async unsubscribe(group: string): Promise<void> {
    this.wanted.delete(group);
    await this.request('unsubscribe', { group });
    this.presenceMap.delete(group);
  }

  /** Sends a data_update to the group; resolves once the gateway handed it to every member. */
  async publish(group: string, payload: unknown, options: { echo?: boolean } = {}): Promise<void> {
    await this.request('data_update', { group, payload, echo: options.echo });
  }

  /** An ephemeral signal (e.g. typing); deduplicated by the gateway, never replayed. */
  async signal(group: string, kind: string, data?: unknown): Promise<void> {
    await this.request('signal', { group, kind, data });
  }

  /** Round trip to the gateway; resolves with its clock. */
  async ping(): Promise<number> {
    return (await this.request('heartbeat', {})).serverTs as number;
  }

  // --- connection ------------------------------------------------------------------------------

  private open(): void {
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const Impl = this.options.WebSocket ?? (globalThis as unknown as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Impl) throw new Error('no WebSocket implementation: pass options.WebSocket');
    const { url } = this.options;
    const socket = new Impl(typeof url === 'function' ? url() : url);
    this.socket = socket;
    socket.onmessage = (ev) => this.onMessage(socket, String(ev.data));
    socket.onclose = (ev) => this.onClose(socket, ev.code, ev.reason);
    socket.onerror = () => undefined;
  }

  private onClose(socket: WebSocketLike, code: number, reason: string): void {
    if (socket !== this.socket) return;
    this.socket = null;
    this.clearTimers();
    if (this.stopped) return;
    const final = FINAL_CLOSES.get(code);
    if (final) {
      const message = `closed by the gateway with ${code}${reason ? `: ${reason}` : ''}`;
      this.end(new GatewayError(final, message, undefined, code));
      this.emit('error', { code: 'CLOSED', message });
      return;
    }
    this.failPending(new GatewayError('DISCONNECTED', 'the connection was lost before the reply arrived', undefined, code));
    if (this.attempt >= (this.options.maxReconnectAttempts ?? Number.POSITIVE_INFINITY)) {
      const message = `gave up after ${this.attempt} reconnect attempts (last close ${code})`;
      this.end(new GatewayError('DISCONNECTED', message, undefined, code));
      this.emit('error', { code: 'DISCONNECTED', message });
      return;
    }
    this.scheduleReconnect();
  }

  /** Stops for good: no more reconnects; connect() waiters and pending requests reject with `err`. */
  private end(err: GatewayError): void {
    this.stopped = true;
    this.clearTimers();
    for (const { reject } of this.readyWaiters.splice(0)) reject(err);
    this.failPending(err);
    this.setState('closed');
  }

  private scheduleReconnect(delayMs?: number): void {
    this.setState('reconnecting');
    const initial = this.options.initialBackoffMs ?? 500;
    const cap = Math.min(this.options.maxBackoffMs ?? 30_000, initial * 2 ** this.attempt);
    this.attempt++;
    this.reconnectTimer = setTimeout(() => this.open(), delayMs ?? Math.random() * cap);
  }

  private async identify(socket: WebSocketLike): Promise<void> {
    let token: string;
    try {
      token = await this.options.getToken();
    } catch {
      socket.close(CloseCode.RESUME_LATER.code, 'no token');
      return;
    }
    if (socket !== this.socket) return;
    const resume = this.session ? { sessionId: this.session.id, sessionToken: this.session.token, lastSeq: this.lastSeq } : undefined;
    this.send(socket, { type: 'identify', id: 'identify', data: { token, groups: [...this.wanted], meta: this.options.meta, resume } });
  }

  private onReady(data: ServerSignals['ready']): void {
    if (!data.resumed) {
      this.lastSeq = 0;
      this.presenceMap.clear();
    }
    this.session = { id: data.sessionId, token: data.sessionToken };
    this.connectionIdValue = data.connectionId;
    for (const { group, members } of data.groups) this.presenceMap.set(group, new Map(members.map((m) => [m.userId, m])));
    this.attempt = 0;
    this.heartbeatTimer = setInterval(() => this.beat(), this.heartbeatIntervalMs);
    this.setState('ready');
    for (const { resolve } of this.readyWaiters.splice(0)) resolve();
    this.emit('ready', { sessionId: data.sessionId, connectionId: data.connectionId, resumed: data.resumed });
  }

  private onMessage(socket: WebSocketLike, text: string): void {
    this.lastMessageAt = Date.now();
    let env: Envelope;
    try {
      env = JSON.parse(text) as Envelope;
    } catch {
      return;
    }
    if (env.seq !== undefined) {
      if (env.seq <= this.lastSeq) return;
      this.lastSeq = env.seq;
    }
    const data = env.data ?? {};
    if (env.replyTo !== undefined) return this.settle(env.replyTo, env.type, data);
    switch (env.type) {
      case 'hello':
        this.heartbeatIntervalMs = data.heartbeatIntervalMs as number;
        this.heartbeatTimeoutMs = data.heartbeatTimeoutMs as number;
        void this.identify(socket);
        return;
      case 'data_update':
        return this.emit('data', { ...(data as ServerSignals['data_update']), seq: env.seq! });
      case 'presence_update':
        return this.onPresence({ ...(data as ServerSignals['presence_update']), seq: env.seq! });
      case 'signal':
        return this.emit('signal', data as ServerSignals['signal']);
      case 'shutdown':
        // The gateway closes with 1001 right after; reconnect no sooner than it asks, keeping the session.
        this.socket = null;
        this.clearTimers();
        this.failPending(new GatewayError('DISCONNECTED', 'the gateway is shutting down'));
        socket.close(CloseCode.RESUME_LATER.code);
        if (!this.stopped) this.scheduleReconnect(data.reconnectAfterMs as number);
        return;
      case 'error':
        return this.emit('error', { code: data.code as ErrorCodeName, message: data.message as string });
    }
  }

  /** Sends a heartbeat; a connection that has been silent past the heartbeat timeout is dropped and resumed. */
  private beat(): void {
    const socket = this.socket;
    if (socket && Date.now() - this.lastMessageAt > this.heartbeatTimeoutMs) {
      const code = CloseCode.RESUME_LATER.code;
      socket.onclose = null;
      socket.close(code, 'no heartbeat reply');
      this.onClose(socket, code, 'no heartbeat reply');
      return;
    }
    this.request('heartbeat', {}).catch(() => undefined);
  }

  private settle(id: string, type: string, data: Record<string, unknown>): void {
    if (id === 'identify') {
      if (type === 'ready') this.onReady(data as unknown as ServerSignals['ready']);
      else this.emit('error', { code: data.code as ErrorCodeName, message: data.message as string });
      return;
    }
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if (type === 'error') pending.reject(new GatewayError(data.code as ErrorCodeName, data.message as string, data.retryAfterMs as number | undefined));
    else {
      if (type === 'heartbeat_ack' && this.session) this.session.token = data.sessionToken as string;
      pending.resolve(data);
    }
  }

  private onPresence(update: PresenceUpdate): void {
    let group = this.presenceMap.get(update.group);
    if (!group) {
      group = new Map();
      this.presenceMap.set(update.group, group);
    }
    if (update.status === 'UP') group.set(update.userId, { userId: update.userId, meta: update.meta, since: Date.now() });
    else group.delete(update.userId);
    this.emit('presence', update);
  }

  // --- requests --------------------------------------------------------------------------------

  /** Waits for `ready` if needed, sends with a fresh id, and settles with the reply's data. */
  private async request(type: string, data: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.stopped) throw new GatewayError('CLOSED', 'the client is closed; call connect()');
    await this.whenReady();
    const socket = this.socket;
    if (!socket) throw new GatewayError('DISCONNECTED', 'not connected');
    const id = `q${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new GatewayError('TIMEOUT', `no reply to ${type} within the request timeout`));
      }, this.options.requestTimeoutMs ?? 10_000);
      this.pending.set(id, { resolve, reject, timer });
      this.send(socket, { type, id, data });
    });
  }

  private whenReady(): Promise<void> {
    if (this.stateValue === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  private send(socket: WebSocketLike, envelope: { type: string; id?: string; data?: unknown }): void {
    if (socket.readyState === OPEN) socket.send(JSON.stringify(envelope));
  }

  private failPending(err: GatewayError): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.pending.delete(id);
    }
  }

  private clearTimers(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.heartbeatTimer = null;
    this.reconnectTimer = null;
  }

  private setState(state: ConnectionState): void {
    if (state === this.stateValue) return;
    this.stateValue = state;
    this.emit('state', state);
  }

  private emit<K extends keyof ClientEvents>(event: K, value: ClientEvents[K]): void {
    for (const listener of this.listeners.get(event) ?? []) (listener as Listener<K>)(value);
  }
}
