// RedisPresenceStore: cluster-wide presence in Redis. Lua scripts decide UP/DOWN and online/offline atomically
// (and append online/offline to rt:events in the same step, so each is written exactly once). A liveness key per
// instance lets survivors reap a dead instance's entries. While Redis is down the store answers from this
// instance's own state, and re-publishes that state when Redis is back.
import { compareMembers, encodeCursor, type GroupName, type Member, type MemberCursor, type PresenceStatus, type SessionId, type UserId } from '../types/domain';
import { isReady, type RedisClient } from '../redis/connection';
import type { Logger } from '../utils/logger';
import { PresenceRegistry } from './PresenceRegistry';
import type { DirectoryEntry, GroupStats, MemberPage, PresenceChange, PresenceEntry, PresenceHandlers, PresenceLook, PresenceStore } from './PresenceStore';

/**
 * How long an empty group's version is kept. Versions must not start again while batches numbered before the group
 * emptied can still arrive (PresenceFanout orders them for a few seconds); after that an idle group costs nothing.
 */
const VERSION_KEEP_MS = 600_000;

/** How often an unanswered directory move is asked again, and how long apart. */
const MOVE_ATTEMPTS = 3;
const MOVE_RETRY_MS = 200;

/** Every Redis key presence uses; this module is their only reader and writer. */
const keys = {
  /** Liveness key of one instance (PX GW_INSTANCE_TTL_MS). */
  instance: (id: string) => `rt:instance:${id}`,
  /** Every presence entry an instance holds, so a survivor can clean up after it. */
  instanceEntries: (id: string) => `rt:instance:${id}:entries`,
  /** Set of instance ids that registered. */
  instances: 'rt:instances',
  /** Lock taken by the survivor that reaps a dead instance. */
  reap: (id: string) => `rt:reap:${id}`,
  /** Set when survivors first saw an instance dead: its sessions count as orphaned from then. */
  dead: (id: string) => `rt:dead:${id}`,
  /** Hash: "instance|session" → member JSON (memberJson), for one group. */
  presence: (group: GroupName) => `rt:presence:${group}`,
  /** Set of one user's "instance|session" entries in one group. */
  presenceUser: (group: GroupName, userId: UserId) => `rt:presence:${group}|${userId}`,
  /** Sorted set: the group's member list, each listed user scored by the `since` of their leading entry (ties: by user id). */
  order: (group: GroupName) => `rt:presence:${group}#order`,
  /** Hash: userId → member JSON of their leading entry, for one group; its length is the group's (listed) user count. */
  listed: (group: GroupName) => `rt:presence:${group}#users`,
  /** The group's transition counter (PresenceChange.version); expires VERSION_KEEP_MS after the group emptied. */
  version: (group: GroupName) => `rt:presence:${group}#version`,
  /** Set of one user's "instance|session" entries anywhere in the cluster: the per-user count, and the session directory. */
  userConnections: (userId: UserId) => `rt:conns:${userId}`,
  /** Online/offline events for backends. */
  events: 'rt:events',
  /** The lease of the handoff moving a session (see PresenceStore.lease). */
  lease: (sessionId: SessionId) => `rt:lease:${sessionId}`,
} as const;

/**
 * The Lua shared by JOIN, LEAVE and UPDATE: `relist` lists a user in a group as their leading session shows them (the
 * rule of PresenceRegistry: RANK there is AVAILABILITY_RANK) and returns the transition, {status, member JSON,
 * version, count}, or false. A session's member JSON ends `,"availability":"…","since":N}` (memberJson): read with a
 * pattern, not decoded, and what precedes `,"since":` is how it shows (two leading sessions showing the same move the
 * user in the list unannounced). An entry without availability (written by an older gateway) counts as online.
 */
const RELIST = `
local RANK = {online = 3, idle = 2, dnd = 1, invisible = 0}
local function relist(presence, userSet, order, listed, version, userId, keepMs)
  local best, bestRank, bestSince, bestField
  for _, f in ipairs(redis.call('SMEMBERS', userSet)) do
    local json = redis.call('HGET', presence, f)
    if json then
      local a, s = string.match(json, ',"availability":"(%a+)","since":(%d+)}$')
      if not a then a, s = 'online', string.match(json, ',"since":(%d+)}$') end
      local rank, since = RANK[a] or 0, tonumber(s)
      if since and rank > 0 and (not best or rank > bestRank or (rank == bestRank and (since < bestSince or (since == bestSince and f < bestField)))) then
        best, bestRank, bestSince, bestField = json, rank, since, f
      end
    end
  end
  local current = redis.call('HGET', listed, userId)
  if not best then
    if not current then return false end
    redis.call('HDEL', listed, userId)
    redis.call('ZREM', order, userId)
    local count = redis.call('HLEN', listed)
    local v = redis.call('INCR', version)
    if count == 0 then redis.call('PEXPIRE', version, keepMs) end
    return {'DOWN', current, v, count}
  end
  if best == current then return false end
  redis.call('HSET', listed, userId, best)
  redis.call('ZADD', order, bestSince, userId)
  if current and string.match(current, '^(.*),"since":%d+}$') == string.match(best, '^(.*),"since":%d+}$') then return false end
  local v = redis.call('INCR', version)
  redis.call('PERSIST', version)
  return {current and 'UPDATE' or 'UP', best, v, redis.call('HLEN', listed)}
end
`;

/** KEYS: presence hash, user's set in the group, instance entries, order, listed, version. ARGV: field, member JSON, entry, userId, version keep (ms). */
const JOIN = `${RELIST}
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
return relist(KEYS[1], KEYS[2], KEYS[4], KEYS[5], KEYS[6], ARGV[4], ARGV[5])`;

/** KEYS: as JOIN. ARGV: field, entry, userId, version keep (ms). */
const LEAVE = `${RELIST}
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[2])
if redis.call('SREM', KEYS[2], ARGV[1]) == 0 then return false end
return relist(KEYS[1], KEYS[2], KEYS[4], KEYS[5], KEYS[6], ARGV[3], ARGV[4])`;

/** KEYS: as JOIN. ARGV: field, member JSON, userId, version keep (ms). Only for an entry that is there. */
const UPDATE = `${RELIST}
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return false end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return relist(KEYS[1], KEYS[2], KEYS[4], KEYS[5], KEYS[6], ARGV[3], ARGV[4])`;

/**
 * KEYS: order, listed, version. ARGV: the cursor's since ('' from the start), limit. Returns {count, version, ties,
 * member JSON…}: from the start, limit + 1 members; after a cursor, first every member whose since equals the
 * cursor's (\`ties\` of them: the caller keeps those after the cursor's user id), then limit + 1 later ones.
 */
const PAGE = `
local limit = tonumber(ARGV[2])
local ids, ties = {}, 0
if ARGV[1] == '' then
  ids = redis.call('ZRANGE', KEYS[1], 0, limit)
else
  ids = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
  ties = #ids
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'LIMIT', 0, limit + 1)) do ids[#ids + 1] = id end
end
local out = {redis.call('HLEN', KEYS[2]), tonumber(redis.call('GET', KEYS[3]) or '0'), ties}
if #ids > 0 then
  for _, json in ipairs(redis.call('HMGET', KEYS[2], unpack(ids))) do out[#out + 1] = json or '' end
end
return out`;

/** KEYS: user's connections, instance entries, events. ARGV: field, max, entry, userId, instance, ts, maxlen. Returns 0 over the cap. */
const CONNECT = `
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[3])
if redis.call('SCARD', KEYS[1]) == 1 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'type', 'online', 'userId', ARGV[4], 'instance', ARGV[5], 'ts', ARGV[6])
end
return 1`;

/** KEYS: as CONNECT. ARGV: field, entry, userId, instance, ts, maxlen, reason. Returns 1 when the user went offline. */
const DISCONNECT = `
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('SREM', KEYS[1], ARGV[1]) == 1 and redis.call('SCARD', KEYS[1]) == 0 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'type', 'offline', 'userId', ARGV[3], 'instance', ARGV[4], 'reason', ARGV[7], 'ts', ARGV[5])
  return 1
end
return 0`;

/**
 * KEYS: user's connections, old owner's entries, new owner's entries, lease. ARGV: old field, new field, entry, lease.
 * Moves the session's directory entry from the old owner to the new one, only under the lease and if the old owner
 * still has it: 1 moved (or already moved here: a repeated call after a lost answer), 0 not.
 */
const MOVE = `
if redis.call('SISMEMBER', KEYS[1], ARGV[2]) == 1 then return 1 end
if redis.call('GET', KEYS[4]) ~= ARGV[4] then return 0 end
redis.call('DEL', KEYS[4])
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SADD', KEYS[1], ARGV[2])
redis.call('SREM', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[3])
return 1`;

/**
 * KEYS: user's connections, lease. ARGV: field, lease. When the field is still there, the session stays with its owner:
 * that lease ends (it can move nothing now) and 1. Otherwise 0. Another handoff's lease is never touched.
 */
const REVOKE = `
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 1`;

/** KEYS: lease. ARGV: lease. Deletes the lease only if it is this one. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0`;

/** KEYS: instance entries, instances. ARGV: instance id. A stopping instance leaves the set only when it holds no entry. */
const LEAVE_CLUSTER = `
if redis.call('SCARD', KEYS[1]) > 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
return 1`;

/** What an instance holds, as stored in its entries set: a group membership or a user connection. */
type HeldEntry = ['g', GroupName, SessionId, UserId] | ['u', UserId, SessionId];

/** What RELIST answers: the transition's status, the member JSON (for DOWN: as listed), version, count. */
type Relisted = [PresenceStatus, string, number, number] | null;

interface ScriptClient {
  gwJoin(k1: string, k2: string, k3: string, k4: string, k5: string, k6: string, field: string, member: string, entry: string, userId: string, keepMs: number): Promise<Relisted>;
  gwLeave(k1: string, k2: string, k3: string, k4: string, k5: string, k6: string, field: string, entry: string, userId: string, keepMs: number): Promise<Relisted>;
  gwUpdate(k1: string, k2: string, k3: string, k4: string, k5: string, k6: string, field: string, member: string, userId: string, keepMs: number): Promise<Relisted>;
  gwPage(k1: string, k2: string, k3: string, since: string, limit: number): Promise<[number, number, number, ...string[]]>;
  gwConnect(k1: string, k2: string, k3: string, ...argv: (string | number)[]): Promise<number>;
  gwDisconnect(k1: string, k2: string, k3: string, ...argv: (string | number)[]): Promise<number>;
  gwMove(k1: string, k2: string, k3: string, k4: string, from: string, to: string, entry: string, lease: string): Promise<number>;
  gwRevoke(k1: string, k2: string, field: string, lease: string): Promise<number>;
  gwRelease(k1: string, lease: string): Promise<number>;
  gwLeaveCluster(k1: string, k2: string, id: string): Promise<number>;
}

export interface RedisPresenceOptions {
  instanceId: string;
  redis: RedisClient;
  logger: Logger;
  instanceTtlMs: number;
  /** A dead instance's sessions count as orphaned from when survivors first see it dead; they are reaped after this. */
  orphanSessionTtlMs: number;
  eventsMaxLen: number;
}

export class RedisPresenceStore implements PresenceStore {
  private readonly redis: RedisClient & ScriptClient;
  private readonly id: string;
  private readonly log: Logger;
  /** This instance's own entries: the fallback while Redis is down, and what is re-published when it is back. */
  private readonly local = new PresenceRegistry();
  private readonly localUsers = new Map<UserId, Set<SessionId>>();
  private readonly inFlightWork = new Set<Promise<unknown>>();
  /** Entries whose Redis write is under way (see inFlight), or of sessions moving away (see moving): a reconcile leaves them alone. */
  private readonly pending = new Set<string>();
  private handlers: PresenceHandlers | null = null;
  private timers: NodeJS.Timeout[] = [];
  /** Set when Redis missed an update; the next `ready` reconciles. */
  private stale = false;

  constructor(private readonly options: RedisPresenceOptions) {
    this.id = options.instanceId;
    this.log = options.logger;
    const redis = options.redis;
    redis.defineCommand('gwJoin', { numberOfKeys: 6, lua: JOIN });
    redis.defineCommand('gwLeave', { numberOfKeys: 6, lua: LEAVE });
    redis.defineCommand('gwUpdate', { numberOfKeys: 6, lua: UPDATE });
    redis.defineCommand('gwPage', { numberOfKeys: 3, lua: PAGE });
    redis.defineCommand('gwConnect', { numberOfKeys: 3, lua: CONNECT });
    redis.defineCommand('gwDisconnect', { numberOfKeys: 3, lua: DISCONNECT });
    redis.defineCommand('gwMove', { numberOfKeys: 4, lua: MOVE });
    redis.defineCommand('gwRevoke', { numberOfKeys: 2, lua: REVOKE });
    redis.defineCommand('gwRelease', { numberOfKeys: 1, lua: RELEASE });
    redis.defineCommand('gwLeaveCluster', { numberOfKeys: 2, lua: LEAVE_CLUSTER });
    this.redis = redis as RedisClient & ScriptClient;
  }

  async start(handlers: PresenceHandlers): Promise<void> {
    this.handlers = handlers;
    this.redis.on('ready', () => void this.track(this.onReady()));
    if (isReady(this.redis)) void this.track(this.onReady());
    const ttl = this.options.instanceTtlMs;
    this.timers = [
      setInterval(() => void this.track(this.heartbeat()), Math.max(50, Math.floor(ttl / 3))),
      setInterval(() => void this.track(this.reapDead()), Math.max(50, Math.floor(ttl / 2))),
    ];
    for (const t of this.timers) t.unref();
  }

  async join(entry: PresenceEntry): Promise<PresenceChange | null> {
    const { group, userId, sessionId, since } = entry;
    const localChange = this.local.join(group, userId, sessionId, entry, since);
    const remote = await this.attempt(() => this.joinIn(group, userId, sessionId, entry, since));
    return remote === undefined ? localChange : transition(remote);
  }

  async leave(group: GroupName, userId: UserId, sessionId: SessionId): Promise<PresenceChange | null> {
    const localChange = this.local.leave(group, userId, sessionId);
    const remote = await this.attempt(() => this.leaveIn(this.id, group, userId, sessionId));
    return remote === undefined ? localChange : transition(remote);
  }

  async update(group: GroupName, userId: UserId, sessionId: SessionId, look: PresenceLook): Promise<PresenceChange | null> {
    const since = this.local.entry(group, userId, sessionId)?.since;
    if (since === undefined) return null;
    const localChange = this.local.update(group, userId, sessionId, look);
    const member = memberJson(userId, look, since);
    const remote = await this.attempt(() => this.redis.gwUpdate(...groupKeys(group, userId, this.id), this.field(sessionId), member, userId, VERSION_KEEP_MS));
    return remote === undefined ? localChange : transition(remote);
  }

  async members(group: GroupName, after: MemberCursor | undefined, limit: number): Promise<MemberPage> {
    const answer = await this.attempt(() => this.redis.gwPage(keys.order(group), keys.listed(group), keys.version(group), after ? String(after.since) : '', limit));
    if (answer === undefined) return this.local.page(group, after, limit);
    const [count, version, ties, ...listed] = answer;
    const members: Member[] = [];
    listed.forEach((json, i) => {
      const member = parseMember(json);
      if (member && (i >= ties || (after && compareMembers(member, after) > 0))) members.push(member);
    });
    const page = members.slice(0, limit);
    const last = page[page.length - 1];
    return { members: page, count, next: members.length > limit && last ? encodeCursor(last) : null, version };
  }

  /** The group's hash holds one field per session and its listed hash one per user: their lengths, in one MULTI. */
  async stats(group: GroupName): Promise<GroupStats> {
    const answer = await this.attempt(() => this.redis.multi().hlen(keys.presence(group)).hlen(keys.listed(group)).exec());
    const [sessions, users] = (answer ?? []).map(([err, n]) => (err ? undefined : Number(n)));
    if (sessions === undefined || users === undefined) return this.local.stats(group);
    return { users, sessions };
  }

  async connect(userId: UserId, sessionId: SessionId, max: number): Promise<boolean> {
    const remote = await this.inFlight(held(['u', userId, sessionId]), () => this.attempt(() => this.connectIn(userId, sessionId, max)));
    const own = this.localUsers.get(userId);
    if (remote === 0 || (remote === undefined && own && own.size >= max)) return false;
    this.countLocally(userId, sessionId);
    return true;
  }

  async disconnect(userId: UserId, sessionId: SessionId): Promise<void> {
    this.uncountLocally(userId, sessionId);
    await this.attempt(() => this.disconnectIn(this.id, userId, sessionId, 'closed'));
  }

  /**
   * Runs a write of `entry` to Redis that the local state follows only once it answers (connect, transfer): meanwhile a
   * reconcile (after a reconnect) neither removes the entry as stale nor adds it.
   */
  private async inFlight<T>(entry: string, write: () => Promise<T>): Promise<T> {
    this.pending.add(entry);
    try {
      return await write();
    } finally {
      this.pending.delete(entry);
    }
  }

  /** Whether the local state holds `entry` now. */
  private holds(parts: HeldEntry): boolean {
    if (parts[0] === 'u') return this.localUsers.get(parts[1])?.has(parts[2]) === true;
    const [, group, sessionId, userId] = parts;
    return this.local.has(group, userId, sessionId);
  }

  private countLocally(userId: UserId, sessionId: SessionId): void {
    const own = this.localUsers.get(userId);
    if (own) own.add(sessionId);
    else this.localUsers.set(userId, new Set([sessionId]));
  }

  private uncountLocally(userId: UserId, sessionId: SessionId): void {
    const own = this.localUsers.get(userId);
    own?.delete(sessionId);
    if (own?.size === 0) this.localUsers.delete(userId);
  }

  async transfer(fromInstance: string, session: { userId: UserId; sessionId: SessionId; since: number } & PresenceLook, groups: GroupName[], lease: string): Promise<boolean> {
    const { userId, sessionId, since } = session;
    const entry = held(['u', userId, sessionId]);
    const move = () =>
      this.attempt(() =>
        this.redis.gwMove(keys.userConnections(userId), keys.instanceEntries(fromInstance), keys.instanceEntries(this.id), keys.lease(sessionId), `${fromInstance}|${sessionId}`, this.field(sessionId), entry, lease),
      );
    const moved = await this.inFlight(entry, async () => {
      // An answer lost on the way (a timeout, a dropped connection) leaves the move unknown: the move is idempotent, so
      // ask again, for a while. Unknown in the end counts as not moved; the owner's revoke then settles it.
      for (let attempt = 0; attempt < MOVE_ATTEMPTS; attempt++) {
        const answer = await move();
        if (answer !== undefined) return answer;
        await new Promise((resolve) => setTimeout(resolve, MOVE_RETRY_MS));
      }
      return undefined;
    });
    if (moved !== 1) return false;
    this.countLocally(userId, sessionId);
    // Each group entry keeps its `since`; this instance's goes in before the old one comes out, so no count reaches zero.
    await this.attempt(async () => {
      for (const group of groups) {
        const joined = parseMember((await this.redis.hget(keys.presence(group), `${fromInstance}|${sessionId}`)) ?? '')?.since ?? since;
        this.local.join(group, userId, sessionId, session, joined);
        await this.joinIn(group, userId, sessionId, session, joined);
        await this.leaveIn(fromInstance, group, userId, sessionId);
      }
    });
    return true;
  }

  async lease(sessionId: SessionId, lease: string, ttlMs: number): Promise<boolean> {
    return (await this.attempt(() => this.redis.set(keys.lease(sessionId), lease, 'PX', ttlMs, 'NX'))) === 'OK';
  }

  async release(sessionId: SessionId, lease: string): Promise<void> {
    await this.attempt(() => this.redis.gwRelease(keys.lease(sessionId), lease));
  }

  async revoke(userId: UserId, sessionId: SessionId, lease: string): Promise<boolean | null> {
    const kept = await this.attempt(() => this.redis.gwRevoke(keys.userConnections(userId), keys.lease(sessionId), this.field(sessionId), lease));
    return kept === undefined ? null : kept === 1;
  }

  async owner(userId: UserId, sessionId: SessionId): Promise<string | null> {
    return (await this.sessionsOf(userId)).find((entry) => entry.sessionId === sessionId)?.instanceId ?? null;
  }

  /** The user's `rt:conns` set: one `instance|session` field per session. */
  async sessionsOf(userId: UserId): Promise<DirectoryEntry[]> {
    const fields = await this.attempt(() => this.redis.smembers(keys.userConnections(userId)));
    if (fields === undefined) return [...(this.localUsers.get(userId) ?? [])].map((sessionId) => ({ sessionId, instanceId: this.id }));
    return fields.flatMap((field) => {
      // Session ids never hold `|` (utils/ids.ts); an instance id may.
      const cut = field.lastIndexOf('|');
      return cut < 0 ? [] : [{ sessionId: field.slice(cut + 1), instanceId: field.slice(0, cut) }];
    });
  }

  moving(userId: UserId, sessionId: SessionId, groups: GroupName[], on: boolean): void {
    for (const entry of [held(['u', userId, sessionId]), ...groups.map((group) => held(['g', group, sessionId, userId]))]) {
      if (on) this.pending.add(entry);
      else this.pending.delete(entry);
    }
  }

  handedOver(userId: UserId, sessionId: SessionId, groups: GroupName[]): void {
    for (const group of groups) this.local.leave(group, userId, sessionId);
    this.uncountLocally(userId, sessionId);
  }

  /**
   * Stops maintenance and drops this instance's liveness key. Its entries stay: its sessions were orphaned by the
   * shutdown, so their users stay UP until survivors reap them after the orphan TTL (or they resume elsewhere). An
   * instance that holds nothing (it never served, or every session ended) also leaves the instance set: nothing is
   * left for survivors to reap.
   */
  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    while (this.inFlightWork.size > 0) await Promise.allSettled([...this.inFlightWork]);
    this.handlers = null;
    if (!isReady(this.redis)) return;
    await this.redis.del(keys.instance(this.id)).catch(() => undefined);
    // Only when Redis holds nothing of this instance either: an entry left there (a move whose answer was lost, say)
    // must stay reapable.
    if (this.localUsers.size === 0 && this.local.groupCount === 0) await this.redis.gwLeaveCluster(keys.instanceEntries(this.id), keys.instances, this.id).catch(() => undefined);
  }

  // --- internals -------------------------------------------------------------------------------

  private field(sessionId: SessionId): string {
    return `${this.id}|${sessionId}`;
  }

  /** JOIN for this instance's entry of the session in the group. */
  private joinIn(group: GroupName, userId: UserId, sessionId: SessionId, look: PresenceLook, since: number): Promise<Relisted> {
    return this.redis.gwJoin(...groupKeys(group, userId, this.id), this.field(sessionId), memberJson(userId, look, since), held(['g', group, sessionId, userId]), userId, VERSION_KEEP_MS);
  }

  /** LEAVE for `instance`'s entry of the session in the group. */
  private leaveIn(instance: string, group: GroupName, userId: UserId, sessionId: SessionId): Promise<Relisted> {
    return this.redis.gwLeave(...groupKeys(group, userId, instance), `${instance}|${sessionId}`, held(['g', group, sessionId, userId]), userId, VERSION_KEEP_MS);
  }

  /** CONNECT for this instance's session of the user; 0 when the user already has `max`. */
  private connectIn(userId: UserId, sessionId: SessionId, max: number): Promise<number> {
    return this.redis.gwConnect(keys.userConnections(userId), keys.instanceEntries(this.id), keys.events, this.field(sessionId), max, held(['u', userId, sessionId]), userId, this.id, Date.now(), this.options.eventsMaxLen);
  }

  private disconnectIn(instance: string, userId: UserId, sessionId: SessionId, reason: 'closed' | 'instance-lost'): Promise<number> {
    return this.redis.gwDisconnect(keys.userConnections(userId), keys.instanceEntries(instance), keys.events, `${instance}|${sessionId}`, held(['u', userId, sessionId]), userId, instance, Date.now(), this.options.eventsMaxLen, reason);
  }

  /** Runs a Redis operation; undefined (and a reconcile later) when Redis is down or the call fails. */
  private async attempt<T>(op: () => Promise<T>): Promise<T | undefined> {
    if (!isReady(this.redis)) {
      this.stale = true;
      return undefined;
    }
    const pending = op();
    this.inFlightWork.add(pending);
    try {
      return await pending;
    } catch (err) {
      this.stale = true;
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'presence update failed; serving local presence');
      return undefined;
    } finally {
      this.inFlightWork.delete(pending);
    }
  }

  private track(work: Promise<void>): Promise<void> {
    const guarded = work.catch((err: unknown) => this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'presence maintenance failed'));
    this.inFlightWork.add(guarded);
    void guarded.finally(() => this.inFlightWork.delete(guarded));
    return guarded;
  }

  private async heartbeat(): Promise<void> {
    if (!isReady(this.redis)) return;
    await this.redis.multi().set(keys.instance(this.id), String(Date.now()), 'PX', this.options.instanceTtlMs).sadd(keys.instances, this.id).exec();
  }

  private async onReady(): Promise<void> {
    this.handlers?.onReconnected();
    await this.heartbeat();
    await this.reconcile();
  }

  /**
   * Makes Redis hold exactly this instance's local state, announcing what changed for the rest of the cluster. Each
   * entry is checked against the local state as it is when the entry's turn comes (connects and leaves go on meanwhile),
   * and entries with a write under way are left to that write.
   */
  private async reconcile(): Promise<void> {
    this.stale = false;
    const stored = new Set(await this.redis.smembers(keys.instanceEntries(this.id)));
    const wanted = new Map<string, HeldEntry>();
    for (const [userId, conns] of this.localUsers) for (const c of conns) wanted.set(held(['u', userId, c]), ['u', userId, c]);
    for (const [group, userId, sessionId] of this.local.entries()) wanted.set(held(['g', group, sessionId, userId]), ['g', group, sessionId, userId]);

    for (const entry of stored) {
      const parts = parseHeld(entry);
      if (this.pending.has(entry) || (parts && this.holds(parts))) continue;
      await this.remove(this.id, entry, 'closed');
    }
    for (const [entry, parts] of wanted) {
      if (stored.has(entry) || this.pending.has(entry) || !this.holds(parts)) continue;
      if (parts[0] === 'u') {
        await this.connectIn(parts[1], parts[2], Number.MAX_SAFE_INTEGER);
      } else {
        const [, group, sessionId, userId] = parts;
        const entry = this.local.entry(group, userId, sessionId)!;
        const change = transition(await this.joinIn(group, userId, sessionId, entry, entry.since));
        if (change) this.handlers?.onTransition(group, userId, change);
      }
    }
  }

  /**
   * Looks for instances whose liveness key is gone. Their sessions are orphaned from the moment one is first seen
   * dead; once the orphan TTL has passed, one survivor (the lock's winner) reaps them.
   */
  private async reapDead(): Promise<void> {
    if (!isReady(this.redis)) return;
    if (this.stale) await this.reconcile();
    const { instanceTtlMs, orphanSessionTtlMs } = this.options;
    for (const other of await this.redis.smembers(keys.instances)) {
      if (other === this.id || (await this.redis.exists(keys.instance(other))) === 1) continue;
      await this.redis.set(keys.dead(other), String(Date.now()), 'PX', orphanSessionTtlMs + instanceTtlMs * 4, 'NX');
      const deadSince = Number(await this.redis.get(keys.dead(other)));
      if (Date.now() - deadSince < orphanSessionTtlMs) continue;
      const won = await this.redis.set(keys.reap(other), this.id, 'PX', instanceTtlMs * 2, 'NX');
      if (won !== 'OK') continue;
      this.log.warn({ instance: other }, 'instance gone; ending its orphaned sessions');
      await this.reap(other);
      await this.redis.del(keys.dead(other), keys.reap(other));
    }
  }

  /** Removes every entry a dead instance held, announcing DOWN transitions. */
  private async reap(instance: string): Promise<void> {
    for (const entry of await this.redis.smembers(keys.instanceEntries(instance))) {
      await this.remove(instance, entry, 'instance-lost');
    }
    await this.redis.multi().srem(keys.instances, instance).del(keys.instanceEntries(instance)).exec();
  }

  /** Removes one held entry, announcing a DOWN it causes. */
  private async remove(instance: string, entry: string, reason: 'closed' | 'instance-lost'): Promise<void> {
    const parts = parseHeld(entry);
    if (!parts) {
      await this.redis.srem(keys.instanceEntries(instance), entry);
      return;
    }
    if (parts[0] === 'u') {
      await this.disconnectIn(instance, parts[1], parts[2], reason);
      return;
    }
    const [, group, sessionId, userId] = parts;
    const change = transition(await this.leaveIn(instance, group, userId, sessionId));
    if (change) this.handlers?.onTransition(group, userId, change);
  }
}

/** The keys JOIN and LEAVE take for one user's entry of `instance` in a group. */
function groupKeys(group: GroupName, userId: UserId, instance: string): [string, string, string, string, string, string] {
  return [keys.presence(group), keys.presenceUser(group, userId), keys.instanceEntries(instance), keys.order(group), keys.listed(group), keys.version(group)];
}

/** RELIST's answer as a transition. */
function transition(answer: Relisted): PresenceChange | null {
  if (!answer) return null;
  const [status, json, version, count] = answer;
  const member = parseMember(json);
  return { status, meta: member?.meta ?? {}, since: member?.since ?? 0, availability: member?.availability ?? 'online', version, count };
}

/** A session's entry in a group as RELIST reads it: availability and since last, in this order. */
function memberJson(userId: UserId, { meta, availability }: PresenceLook, since: number): string {
  return JSON.stringify({ userId, meta, availability, since });
}

function held(entry: HeldEntry): string {
  return JSON.stringify(entry);
}

function parseHeld(entry: string): HeldEntry | null {
  try {
    const v: unknown = JSON.parse(entry);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string') && ((v[0] === 'g' && v.length === 4) || (v[0] === 'u' && v.length === 3))) return v as HeldEntry;
  } catch {
    // fall through: malformed entries are dropped by the caller
  }
  return null;
}

/** A member JSON as stored; one without a (visible) availability was written by an older gateway: online. */
function parseMember(json: string): Member | null {
  try {
    const m = JSON.parse(json) as Partial<Member>;
    if (typeof m.userId !== 'string' || typeof m.since !== 'number') return null;
    const availability = m.availability === 'idle' || m.availability === 'dnd' ? m.availability : 'online';
    return { userId: m.userId, meta: typeof m.meta === 'object' && m.meta !== null ? m.meta : {}, since: m.since, availability };
  } catch {
    return null;
  }
}
