// GatewayClient: the SDK web and mobile apps use. Connects and identifies (fetching a token each time), heartbeats on
// the server's interval, refreshes its token in band before it expires, reconnects with exponential backoff and full
// jitter, resumes its session so a short drop loses nothing, and keeps a local presence map and user count per group
// (from member lists and `presence_diff`s).
// Works with the browser's WebSocket or `ws` in Node.
import { CloseCode, type ErrorCodeName } from '../types/codes';
import type { Availability, Member } from '../types/domain';
import { compareMembers, sameLook } from '../types/members';
import type { MemberList, ServerSignals, UnsubscribeReason } from '../types/signals';

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
/** One change of the local presence map. `seq` is the `presence_diff`'s, or 0 when a member list showed the change. */
export type PresenceUpdate = ServerSignals['presence_update'] & { seq: number };
export type CountUpdate = ServerSignals['presence_count'];
export type Signal = ServerSignals['signal'];

export interface ClientEvents {
  state: ConnectionState;
  /** Each successful identify: `resumed` false means a fresh session (refetch your state). */
  ready: { sessionId: string; connectionId: string; resumed: boolean };
  data: DataUpdate;
  /** Once per change of the local presence map: a user added (UP), removed (DOWN), or whose availability or meta changed (UPDATE). */
  presence: PresenceUpdate;
  /** The group's user count changed (from a member list, a `presence_diff` or a `presence_count`). */
  count: CountUpdate;
  signal: Signal;
  /**
   * The gateway took this client out of a group (`not_granted`: the refreshed token no longer grants it; `server`: a
   * backend took the user out of it); it is not re-joined.
   */
  unsubscribed: { group: string; reason: UnsubscribeReason };
  /** An `error` envelope that answered no request of ours, or a close that ends the client (4003, 4005, 4011, 4029, giving up). */
  error: { code: ErrorCodeName | 'CLOSED' | 'DISCONNECTED'; message: string };
}

export interface GatewayClientOptions {
  /**
   * e.g. wss://host/rt. A function is called before every connect, so a client that knows several gateway addresses
   * can move to another one when its instance goes away (behind one load-balanced address, a string is all it needs).
   */
  url: string | (() => string);
  /**
   * Called before every identify (first connect and every reconnect), and before the connection's token expires:
   * the client sends the new token in band (`refresh`) at a random point between 60 % and 80 % of its remaining
   * lifetime, retrying with backoff when this throws or the gateway refuses it.
   */
  getToken(): string | Promise<string>;
  /** Groups to be in; kept across reconnects and re-joined when a fresh session starts. */
  groups?: string[];
  /** This client's presence meta (see setPresence). */
  meta?: Record<string, unknown>;
  /** This client's availability from its first identify (default `online`; see setPresence). */
  availability?: Availability;
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
  ts?: number;
}

type Listener<K extends keyof ClientEvents> = (value: ClientEvents[K]) => void;

/** A group's presence as this client knows it. */
interface GroupPresence {
  /** One entry per user, in member-list order as far as it is known. */
  members: Map<string, Member>;
  count: number;
  /** The map held the whole list and has followed every change since (a fresh session must page it again). */
  complete: boolean;
  /** A `presence_count` came (a large group, not watched): diffs stopped and the map went stale. */
  countsOnly: boolean;
}

/** A loadMembers in progress: the pages read so far, and the diffs that came meanwhile (per user, the latest). */
interface Load {
  pages: number;
  diffs: Map<string, { member: Member | null; pages: number }>;
}

/** Default page size of loadMembers (the protocol allows 1–1000). */
const LOAD_PAGE = 1000;

/** A token is refreshed at a random point between these fractions of its remaining lifetime. */
const REFRESH_AT = { from: 0.6, to: 0.8 } as const;
/**
 * First retry of a failed refresh; doubles per attempt up to half of what is left of the token, and never comes more
 * often than REFRESH_RETRY_FLOOR_MS (retries spend the connection's message bucket).
 */
const REFRESH_RETRY_MS = 500;
const REFRESH_RETRY_FLOOR_MS = 1_000;

/** Close codes after which reconnecting would not help, and the error connect() and pending requests reject with. */
const FINAL_CLOSES = new Map<number, GatewayError['code']>([
  [CloseCode.AUTH_FAILED.code, 'AUTH_FAILED'],
  [CloseCode.REVOKED.code, 'REVOKED'],
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
  private readonly presence = new Map<string, GroupPresence>();
  /** Groups the app watches (presence_watch), watched again when a fresh session starts. */
  private readonly watched = new Set<string>();
  private readonly loads = new Map<string, { promise: Promise<Member[]>; load: Load }>();
  /** What this client says of its presence: sent with every identify, so a fresh session starts with it. */
  private look: { availability: Availability; meta: Record<string, unknown> | undefined };
  private nextId = 1;
  private attempt = 0;
  private stopped = true;
  private session: { id: string; token: string } | null = null;
  private lastSeq = 0;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  /** The connection's expiry (`ready.expiresAt`, `refreshed.expiresAt`), on the gateway's clock. */
  private expiresAt = 0;
  /** The gateway's clock minus ours, from `ready`'s `ts`: expiry is reckoned on the gateway's clock. */
  private clockOffsetMs = 0;
  private readyWaiters: { resolve(): void; reject(err: GatewayError): void }[] = [];
  private connectionIdValue: string | null = null;
  /** From the server's hello. */
  private heartbeatIntervalMs = 10_000;
  private heartbeatTimeoutMs = 25_000;
  private lastMessageAt = 0;

  constructor(private readonly options: GatewayClientOptions) {
    this.wanted = new Set(options.groups ?? []);
    this.look = { availability: options.availability ?? 'online', meta: options.meta };
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

  /**
   * Members of a group as this client last heard, one per user: the first page of the list (`ready`, `subscribe`)
   * plus the changes since, or the whole list after loadMembers(). Empty for a group the client is not in.
   */
  members(group: string): Member[] {
    return [...(this.presence.get(group)?.members.values() ?? [])];
  }

  /** The group's user count (cluster-wide) as last heard; undefined for a group the client is not in. */
  count(group: string): number | undefined {
    return this.presence.get(group)?.count;
  }

  /**
   * Pages through the group's whole member list (`members` requests of `limit` users, default 1000, max 1000) and
   * replaces the local map with it, emitting `presence` for each difference; resolves with the list. Calls made while
   * one is running share it.
   */
  loadMembers(group: string, options: { limit?: number } = {}): Promise<Member[]> {
    const running = this.loads.get(group);
    if (running) return running.promise;
    const load: Load = { pages: 0, diffs: new Map() };
    const promise = this.load(group, options.limit ?? LOAD_PAGE, load).finally(() => this.loads.delete(group));
    this.loads.set(group, { promise, load });
    return promise;
  }

  /**
   * Asks for every presence change of the group even when it is large (`presence_watch`), then loads the whole list
   * (loadMembers), so members() stays complete; `watch` false stops it (a large group then gets counts only).
   * Watches are kept across reconnects.
   */
  async watchPresence(group: string, watch = true): Promise<void> {
    if (watch) this.watched.add(group);
    else this.watched.delete(group);
    await this.request('presence_watch', { group, watch });
    if (!watch) return;
    // A load that began before the ack may have missed changes: the list must be read after it.
    await this.loads.get(group)?.promise.catch(() => undefined);
    await this.loadMembers(group);
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
   * the client ends before that: close(), a close after which reconnecting cannot help (4003, 4005, 4011, 4029), or giving up.
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
    const page = (await this.request('subscribe', { group })) as unknown as MemberList;
    this.applyPage(page, true);
    return page.members;
  }

  async unsubscribe(group: string): Promise<void> {
    this.wanted.delete(group);
    this.watched.delete(group);
    await this.request('unsubscribe', { group });
    this.presence.delete(group);
  }

  /** Sends a data_update to the group; resolves once the gateway handed it to every member. */
  async publish(group: string, payload: unknown, options: { echo?: boolean } = {}): Promise<void> {
    await this.request('data_update', { group, payload, echo: options.echo });
  }

  /** An ephemeral signal (e.g. typing); deduplicated by the gateway, never replayed. */
  async signal(group: string, kind: string, data?: unknown): Promise<void> {
    await this.request('signal', { group, kind, data });
  }

  /**
   * Sets this client's availability and, when given, replaces its presence meta (at most 1 KiB serialized), without
   * reconnecting; resolves once the gateway took it. Members of its groups see the user's availability: the most
   * available among their sessions (tabs), and nothing at all while every one of them is `invisible`.
   */
  async setPresence(availability: Availability, meta?: Record<string, unknown>): Promise<void> {
    await this.request('presence', meta === undefined ? { availability } : { availability, meta });
    // Only once taken: a refused one (meta too large) must not follow every later identify.
    this.look = { availability, meta: meta ?? this.look.meta };
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
    // A backend ended the session: there is nothing to resume, the next identify starts a fresh one.
    if (code === CloseCode.SESSION_ENDED.code) this.session = null;
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
    this.send(socket, { type: 'identify', id: 'identify', data: { token, groups: [...this.wanted], meta: this.look.meta, availability: this.look.availability, resume, presence: 'diffs' } });
  }

  private onReady(data: ServerSignals['ready'], serverTs: number): void {
    if (!data.resumed) this.lastSeq = 0;
    this.session = { id: data.sessionId, token: data.sessionToken };
    this.connectionIdValue = data.connectionId;
    const groups = new Set(data.groups.map((page) => page.group));
    for (const group of [...this.presence.keys()]) if (!groups.has(group)) this.presence.delete(group);
    for (const group of [...this.watched]) if (!groups.has(group)) this.watched.delete(group);
    // Resumed: the session kept its watches, and its replay brings every change. Fresh: watches are sent again, and a
    // list that was complete is paged again.
    const reload: string[] = [];
    for (const page of data.groups) {
      const before = this.presence.get(page.group);
      this.applyPage(page, data.resumed);
      if (!data.resumed && (this.watched.has(page.group) || (before?.complete && page.next !== null))) reload.push(page.group);
    }
    this.attempt = 0;
    this.heartbeatTimer = setInterval(() => this.beat(), this.heartbeatIntervalMs);
    this.clockOffsetMs = serverTs - Date.now();
    this.scheduleRefresh(data.expiresAt);
    this.setState('ready');
    for (const { resolve } of this.readyWaiters.splice(0)) resolve();
    for (const group of reload) void (this.watched.has(group) ? this.watchPresence(group) : this.loadMembers(group)).catch(() => undefined);
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
    if (env.replyTo !== undefined) return this.settle(env.replyTo, env.type, data, env.ts);
    switch (env.type) {
      case 'hello':
        this.heartbeatIntervalMs = data.heartbeatIntervalMs as number;
        this.heartbeatTimeoutMs = data.heartbeatTimeoutMs as number;
        void this.identify(socket);
        return;
      case 'data_update':
        return this.emit('data', { ...(data as ServerSignals['data_update']), seq: env.seq! });
      case 'presence_diff':
        return this.onDiff(data as ServerSignals['presence_diff'], env.seq!);
      case 'presence_count':
        return this.onCount(data as ServerSignals['presence_count']);
      case 'signal':
        return this.emit('signal', data as ServerSignals['signal']);
      case 'unsubscribed':
        return this.onRemoved(data as Required<ServerSignals['unsubscribed']>);
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

  // --- token refresh ---------------------------------------------------------------------------

  private scheduleRefresh(expiresAt: number | undefined): void {
    // A gateway from before connections expired sends no expiresAt: nothing to refresh.
    if (typeof expiresAt !== 'number') return;
    this.expiresAt = expiresAt;
    const left = expiresAt - this.serverNow();
    const at = REFRESH_AT.from + Math.random() * (REFRESH_AT.to - REFRESH_AT.from);
    this.setRefreshTimer(Math.max(0, left * at), 0);
  }

  /** Now on the gateway's clock. */
  private serverNow(): number {
    return Date.now() + this.clockOffsetMs;
  }

  private setRefreshTimer(delayMs: number, attempt: number): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => void this.refresh(attempt), delayMs);
  }

  /**
   * Sends a fresh token for this connection (`refresh`). On failure it tries again with backoff, always before the
   * expiry; if every try fails, the gateway closes with 4004 and the reconnect resumes the session with a new token.
   */
  private async refresh(attempt: number): Promise<void> {
    this.refreshTimer = null;
    const socket = this.socket;
    try {
      const token = await this.options.getToken();
      if (socket !== this.socket) return;
      const { expiresAt } = (await this.request('refresh', { token })) as unknown as ServerSignals['refreshed'];
      if (socket === this.socket) this.scheduleRefresh(expiresAt);
    } catch (err) {
      if (socket !== this.socket || this.stopped) return;
      // The gateway refused the token (AUTH_FAILED): the app's token provider should hear of it.
      if (err instanceof GatewayError && err.code === 'AUTH_FAILED') this.emit('error', { code: err.code, message: err.message });
      const left = this.expiresAt - this.serverNow();
      const backoff = Math.min(REFRESH_RETRY_MS * 2 ** attempt, Math.max(REFRESH_RETRY_FLOOR_MS, left / 2));
      this.setRefreshTimer(backoff / 2 + (Math.random() * backoff) / 2, attempt + 1);
    }
  }

  /** The gateway took the client out of a group: it is no longer wanted, watched or mapped. */
  private onRemoved({ group, reason }: Required<ServerSignals['unsubscribed']>): void {
    this.wanted.delete(group);
    this.watched.delete(group);
    this.presence.delete(group);
    this.emit('unsubscribed', { group, reason });
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

  private settle(id: string, type: string, data: Record<string, unknown>, ts: number | undefined): void {
    if (id === 'identify') {
      if (type === 'ready') this.onReady(data as unknown as ServerSignals['ready'], ts ?? Date.now());
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

  // --- presence --------------------------------------------------------------------------------

  /**
   * A member list page from `ready` or `subscribed`. A group new to the map takes it as is (no `presence` events).
   * Otherwise the page replaces what the map holds up to the page's last member (everything when `next` is null),
   * emitting each difference; members ordered after it are kept, since the page says nothing about them. `following`:
   * the session kept receiving the group's changes (resumed, or subscribed again), so a complete map stays complete.
   */
  private applyPage(page: MemberList, following: boolean): void {
    const state = this.presence.get(page.group);
    if (!state) {
      this.presence.set(page.group, { members: new Map(page.members.map((m) => [m.userId, m])), count: page.count, complete: page.next === null, countsOnly: false });
      this.emit('count', { group: page.group, count: page.count });
      return;
    }
    const last = page.members.at(-1);
    const listed = new Set(page.members.map((m) => m.userId));
    const after = [...state.members.values()].filter((m) => !listed.has(m.userId) && page.next !== null && last !== undefined && compareMembers(m, last) > 0);
    this.replace(page.group, state, [...page.members, ...after]);
    state.complete = page.next === null || (following && state.complete);
    this.setCount(page.group, state, page.count);
  }

  private onDiff(diff: ServerSignals['presence_diff'], seq: number): void {
    const state = this.presence.get(diff.group);
    // Not (yet) a group of ours: its `subscribed` list, read after this diff, follows.
    if (!state) return;
    const load = this.loads.get(diff.group)?.load;
    const changes: PresenceUpdate[] = [];
    // Joins and updates both say how a user shows now: whichever the map held (or not), it takes it.
    for (const member of [...diff.joins, ...(diff.updates ?? [])]) {
      load?.diffs.set(member.userId, { member, pages: load.pages });
      const known = state.members.get(member.userId);
      state.members.set(member.userId, member);
      const change = changeOf(diff.group, known, member, seq);
      if (change) changes.push(change);
    }
    for (const userId of diff.leaves) {
      load?.diffs.set(userId, { member: null, pages: load.pages });
      const known = state.members.get(userId);
      if (!known) continue;
      state.members.delete(userId);
      changes.push({ group: diff.group, userId, status: 'DOWN', meta: known.meta, availability: known.availability, seq });
    }
    for (const change of changes) this.emit('presence', change);
    this.setCount(diff.group, state, diff.count);
    if (state.countsOnly) {
      // Diffs again after counts only (the group shrank below GW_PRESENCE_LARGE_GROUP): the map missed what happened
      // meanwhile. The group is now at most that large, a page or so: page it again.
      state.countsOnly = false;
      void this.loadMembers(diff.group).catch(() => undefined);
    }
  }

  private onCount({ group, count }: ServerSignals['presence_count']): void {
    const state = this.presence.get(group);
    if (!state) return;
    state.countsOnly = true;
    state.complete = false;
    this.setCount(group, state, count);
  }

  private async load(group: string, limit: number, load: Load): Promise<Member[]> {
    const read = new Map<string, { member: Member; page: number }>();
    let after: string | null = null;
    let count: number;
    do {
      const page = (await this.request('members', { group, after: after ?? undefined, limit })) as unknown as MemberList;
      load.pages++;
      // A user read twice (left and came back between two pages) is where the later page has them.
      for (const member of page.members) {
        read.delete(member.userId);
        read.set(member.userId, { member, page: load.pages });
      }
      count = page.count;
      after = page.next;
    } while (after !== null);
    const state = this.presence.get(group);
    if (!state) return [];
    // A diff newer than the pages wins: it came after the page that lists its user, or no page lists its user.
    for (const [userId, diff] of load.diffs) {
      if ((read.get(userId)?.page ?? 0) > diff.pages) continue;
      if (diff.member) read.set(userId, { member: diff.member, page: load.pages });
      else read.delete(userId);
    }
    this.replace(group, state, [...read.values()].map((r) => r.member));
    state.complete = !state.countsOnly;
    this.setCount(group, state, count);
    return this.members(group);
  }

  /** Replaces the group's map with `list`, then emits `presence` (seq 0) for each user added, removed or showing otherwise. */
  private replace(group: string, state: GroupPresence, list: Member[]): void {
    const before = state.members;
    state.members = new Map(list.map((m) => [m.userId, m]));
    const changes: PresenceUpdate[] = [];
    for (const [userId, known] of before) if (!state.members.has(userId)) changes.push({ group, userId, status: 'DOWN', meta: known.meta, availability: known.availability, seq: 0 });
    for (const [userId, member] of state.members) {
      const change = changeOf(group, before.get(userId), member, 0);
      if (change) changes.push(change);
    }
    for (const change of changes) this.emit('presence', change);
  }

  private setCount(group: string, state: GroupPresence, count: number): void {
    if (state.count === count) return;
    state.count = count;
    this.emit('count', { group, count });
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
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.heartbeatTimer = null;
    this.reconnectTimer = null;
    this.refreshTimer = null;
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

/** The `presence` event for a user the map held as `known` (or not at all) and now holds as `member`; null when they show the same. */
function changeOf(group: string, known: Member | undefined, member: Member, seq: number): PresenceUpdate | null {
  const { userId, meta, availability } = member;
  if (!known) return { group, userId, status: 'UP', meta, availability, seq };
  if (sameLook(known, member)) return null;
  return { group, userId, status: 'UPDATE', meta, availability, seq };
}
