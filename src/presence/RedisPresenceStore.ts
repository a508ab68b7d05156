// RedisPresenceStore: cluster-wide presence in Redis (one redis-server or a Redis Cluster, same keys). Lua scripts
// decide UP/DOWN and online/offline atomically, each within one hash slot: a group's keys, or a user's. A liveness key
// and an index of where it holds entries per instance let survivors reap a dead instance's entries. While Redis is
// down the store answers from this instance's own state, and re-publishes that state when Redis is back.
import { compareMembers, encodeCursor, type GroupName, type Member, type MemberCursor, type PresenceStatus, type SessionId, type UserId } from '../types/domain';
import { isCluster, isReady, type RedisClient } from '../redis/connection';
import type { Logger } from '../utils/logger';
import { PresenceRegistry } from './PresenceRegistry';
import type { DirectoryEntry, GroupStats, MemberPage, PresenceChange, PresenceEntry, PresenceEvent, PresenceHandlers, PresenceLook, PresenceStore } from './PresenceStore';

/**
 * How long an empty group's version is kept. Versions must not start again while batches numbered before the group
 * emptied can still arrive (PresenceFanout orders them for a few seconds); after that an idle group costs nothing.
 */
const VERSION_KEEP_MS = 600_000;

/** How often an unanswered directory move is asked again, and how long apart. */
const MOVE_ATTEMPTS = 3;
const MOVE_RETRY_MS = 200;

/**
 * Where an instance may hold entries: `g:<group>` (its sessions in a group) or `u:<userId>` (its connections of a
 * user). It is also the hash tag of that group's or user's keys, so each held set lives in the slot its scripts touch.
 */
type Tag = `g:${GroupName}` | `u:${UserId}`;

/**
 * Every Redis key presence uses; this module is their only reader and writer. Each key carries a hash tag (`{g:…}`,
 * `{u:…}`, `{i:…}`): on a Redis Cluster every script and MULTI stays in one slot (docs/scaling.md, "Redis Cluster:
 * keys and slots"); on one redis-server the braces are only characters. Group names cannot hold braces; a user id that
 * does stays in one slot all the same, since all of a user's keys share the text up to the first `}`.
 */
const keys = {
  /** Liveness key of one instance (PX GW_INSTANCE_TTL_MS). */
  instance: (id: string) => `rt:{i:${id}}`,
  /** Set of tags where the instance may hold entries: a survivor walks it to clean up after the instance. */
  index: (id: string) => `rt:{i:${id}}:index`,
  /** Set when survivors first saw an instance dead: its sessions count as orphaned from then. */
  dead: (id: string) => `rt:{i:${id}}:dead`,
  /** Lock taken by the survivor that reaps a dead instance. */
  reap: (id: string) => `rt:{i:${id}}:reap`,
  /** Set of instance ids that registered. */
  instances: 'rt:instances',
  /** Hash: "instance|session" → member JSON (memberJson), for one group. */
  presence: (group: GroupName) => `rt:{g:${group}}:presence`,
  /** Set of one user's "instance|session" entries in one group. */
  presenceUser: (group: GroupName, userId: UserId) => `rt:{g:${group}}:user:${userId}`,
  /** Sorted set: the group's member list, each listed user scored by the `since` of their leading entry (ties: by user id). */
  order: (group: GroupName) => `rt:{g:${group}}:order`,
  /** Hash: userId → member JSON of their leading entry, for one group; its length is the group's (listed) user count. */
  listed: (group: GroupName) => `rt:{g:${group}}:users`,
  /** The group's transition counter (PresenceChange.version); expires VERSION_KEEP_MS after the group emptied. */
  version: (group: GroupName) => `rt:{g:${group}}:version`,
  /** Set of one user's "instance|session" entries anywhere in the cluster: the per-user count, and the session directory. */
  userConnections: (userId: UserId) => `rt:{u:${userId}}:conns`,
  /** The lease of the handoff moving a session of the user (see PresenceStore.lease), in the user's slot. */
  lease: (userId: UserId, sessionId: SessionId) => `rt:{u:${userId}}:lease:${sessionId}`,
  /** The entries (held JSON) `instance` holds under `tag`: its sessions in the group, or its connections of the user. */
  held: (tag: Tag, instance: string) => `rt:{${tag}}:held:${instance}`,
  /** Online/offline events for backends. */
  events: 'rt:events',
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

/** KEYS: presence hash, user's set in the group, the instance's held set in the group, order, listed, version. ARGV: field, member JSON, entry, userId, version keep (ms). */
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

/**
 * KEYS: user's connections, the instance's held set of the user, and (one redis-server only) events. ARGV: field, max,
 * entry, userId, instance, ts, maxlen. Returns 0 over the cap, 1 counted, 2 counted as the user's first session in
 * the cluster: online, appended here when the events stream is one of the KEYS, else by the caller.
 */
const CONNECT = `
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[3])
if redis.call('SCARD', KEYS[1]) == 1 then
  if KEYS[3] then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'type', 'online', 'userId', ARGV[4], 'instance', ARGV[5], 'ts', ARGV[6])
  end
  return 2
end
return 1`;

/** KEYS: as CONNECT. ARGV: field, entry, userId, instance, ts, maxlen, reason. Returns 1 when the user went offline (appended as CONNECT's online). */
const DISCONNECT = `
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('SREM', KEYS[1], ARGV[1]) == 1 and redis.call('SCARD', KEYS[1]) == 0 then
  if KEYS[3] then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'type', 'offline', 'userId', ARGV[3], 'instance', ARGV[4], 'reason', ARGV[7], 'ts', ARGV[5])
  end
  return 1
end
return 0`;

/**
 * KEYS (all in the user's slot): user's connections, old owner's held set of the user, new owner's, lease. ARGV: old
 * field, new field, entry, lease.
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

/** Held sets read at once (one command each, on their own slots) while reconciling or reaping. */
const READ_CHUNK = 256;

/** What an instance holds, as stored in its held sets: a group membership or a user connection. */
type HeldEntry = ['g', GroupName, SessionId, UserId] | ['u', UserId, SessionId];

/** What RELIST answers: the transition's status, the member JSON (for DOWN: as listed), version, count. */
type Relisted = [PresenceStatus, string, number, number] | null;

interface ScriptClient {
  gwJoin(k1: string, k2: string, k3: string, k4: string, k5: string, k6: string, field: string, member: string, entry: string, userId: string, keepMs: number): Promise<Relisted>;
  gwLeave(k1: string, k2: string, k3: string, k4: string, k5: string, k6: string, field: string, entry: string, userId: string, keepMs: number): Promise<Relisted>;
  gwUpdate(k1: string, k2: string, k3: string, k4: string, k5: string, k6: string, field: string, member: string, userId: string, keepMs: number): Promise<Relisted>;
  gwPage(k1: string, k2: string, k3: string, since: string, limit: number): Promise<[number, number, number, ...string[]]>;
  gwConnect(...keysAndArgv: (string | number)[]): Promise<number>;
  gwDisconnect(...keysAndArgv: (string | number)[]): Promise<number>;
  gwMove(k1: string, k2: string, k3: string, k4: string, from: string, to: string, entry: string, lease: string): Promise<number>;
  gwRevoke(k1: string, k2: string, field: string, lease: string): Promise<number>;
  gwRelease(k1: string, lease: string): Promise<number>;
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
  /**
   * The tags this instance may have in its index (every one it added since it last read the index): where pruneIndex
   * looks for tags no longer needed.
   */
  private readonly tags = new Set<Tag>();
  /** While pruneIndex waits for Redis: the tags indexed meanwhile, which it must not drop. */
  private indexedDuringPrune: Set<Tag> | null = null;
  private pruning = false;
  /**
   * On one redis-server CONNECT and DISCONNECT append online/offline in the script (exactly once). On a Redis Cluster
   * the stream is in another slot: the caller appends right after the script (see appendEvent).
   */
  private readonly eventsInScript: boolean;

  constructor(private readonly options: RedisPresenceOptions) {
    this.id = options.instanceId;
    this.log = options.logger;
    const redis = options.redis;
    redis.defineCommand('gwJoin', { numberOfKeys: 6, lua: JOIN });
    redis.defineCommand('gwLeave', { numberOfKeys: 6, lua: LEAVE });
    redis.defineCommand('gwUpdate', { numberOfKeys: 6, lua: UPDATE });
    redis.defineCommand('gwPage', { numberOfKeys: 3, lua: PAGE });
    this.eventsInScript = !isCluster(redis);
    redis.defineCommand('gwConnect', { numberOfKeys: this.eventsInScript ? 3 : 2, lua: CONNECT });
    redis.defineCommand('gwDisconnect', { numberOfKeys: this.eventsInScript ? 3 : 2, lua: DISCONNECT });
    redis.defineCommand('gwMove', { numberOfKeys: 4, lua: MOVE });
    redis.defineCommand('gwRevoke', { numberOfKeys: 2, lua: REVOKE });
    redis.defineCommand('gwRelease', { numberOfKeys: 1, lua: RELEASE });
    this.redis = redis as RedisClient & ScriptClient;
  }

  async start(handlers: PresenceHandlers): Promise<void> {
    this.handlers = handlers;
    this.redis.on('ready', () => void this.track(this.onReady()));
    if (isReady(this.redis)) void this.track(this.onReady());
    const ttl = this.options.instanceTtlMs;
    this.timers = [
      setInterval(() => void this.track(this.heartbeat()), Math.max(50, Math.floor(ttl / 3))),
      setInterval(() => void this.track(this.maintain()), Math.max(50, Math.floor(ttl / 2))),
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
    const tag: Tag = `u:${userId}`;
    const move = () =>
      this.attempt(async () => {
        await this.index(tag);
        return this.redis.gwMove(keys.userConnections(userId), keys.held(tag, fromInstance), keys.held(tag, this.id), keys.lease(userId, sessionId), `${fromInstance}|${sessionId}`, this.field(sessionId), entry, lease);
      });
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

  async lease(userId: UserId, sessionId: SessionId, lease: string, ttlMs: number): Promise<boolean> {
    return (await this.attempt(() => this.redis.set(keys.lease(userId, sessionId), lease, 'PX', ttlMs, 'NX'))) === 'OK';
  }

  async release(userId: UserId, sessionId: SessionId, lease: string): Promise<void> {
    await this.attempt(() => this.redis.gwRelease(keys.lease(userId, sessionId), lease));
  }

  async revoke(userId: UserId, sessionId: SessionId, lease: string): Promise<boolean | null> {
    const kept = await this.attempt(() => this.redis.gwRevoke(keys.userConnections(userId), keys.lease(userId, sessionId), this.field(sessionId), lease));
    return kept === undefined ? null : kept === 1;
  }

  async owner(userId: UserId, sessionId: SessionId): Promise<string | null> {
    return (await this.sessionsOf(userId)).find((entry) => entry.sessionId === sessionId)?.instanceId ?? null;
  }

  /** The user's `conns` set: one `instance|session` field per session. */
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
    if (this.localUsers.size > 0 || this.local.groupCount > 0) return;
    // Only when Redis holds nothing of this instance either: the prune keeps every tag whose held set is not empty (a
    // move whose answer was lost, say), and such an entry must stay reapable. Nothing writes here any more, so the
    // check and the SREM need no atomicity.
    try {
      await this.pruneIndex();
      if ((await this.redis.scard(keys.index(this.id))) === 0) await this.redis.srem(keys.instances, this.id);
    } catch {
      // Left for survivors: they reap what the index still names.
    }
  }

  // --- internals -------------------------------------------------------------------------------

  private field(sessionId: SessionId): string {
    return `${this.id}|${sessionId}`;
  }

  /** JOIN for this instance's entry of the session in the group (its tag indexed first). */
  private async joinIn(group: GroupName, userId: UserId, sessionId: SessionId, look: PresenceLook, since: number): Promise<Relisted> {
    await this.index(`g:${group}`);
    return this.redis.gwJoin(...groupKeys(group, userId, this.id), this.field(sessionId), memberJson(userId, look, since), held(['g', group, sessionId, userId]), userId, VERSION_KEEP_MS);
  }

  /** LEAVE for `instance`'s entry of the session in the group. */
  private leaveIn(instance: string, group: GroupName, userId: UserId, sessionId: SessionId): Promise<Relisted> {
    return this.redis.gwLeave(...groupKeys(group, userId, instance), `${instance}|${sessionId}`, held(['g', group, sessionId, userId]), userId, VERSION_KEEP_MS);
  }

  /** CONNECT for this instance's session of the user (its tag indexed first); 0 when the user already has `max`. */
  private async connectIn(userId: UserId, sessionId: SessionId, max: number): Promise<number> {
    await this.index(`u:${userId}`);
    const ts = Date.now();
    const answer = await this.redis.gwConnect(...this.userKeys(userId, this.id), this.field(sessionId), max, held(['u', userId, sessionId]), userId, this.id, ts, this.options.eventsMaxLen);
    if (answer === 2) await this.appendEvent({ type: 'online', userId, instance: this.id, ts });
    return answer;
  }

  private async disconnectIn(instance: string, userId: UserId, sessionId: SessionId, reason: 'closed' | 'instance-lost'): Promise<number> {
    const ts = Date.now();
    const offline = await this.redis.gwDisconnect(...this.userKeys(userId, instance), `${instance}|${sessionId}`, held(['u', userId, sessionId]), userId, instance, ts, this.options.eventsMaxLen, reason);
    if (offline === 1) await this.appendEvent({ type: 'offline', userId, instance, reason, ts });
    return offline;
  }

  /** The keys CONNECT and DISCONNECT take for `instance`'s connection of the user. */
  private userKeys(userId: UserId, instance: string): string[] {
    const own = [keys.userConnections(userId), keys.held(`u:${userId}`, instance)];
    return this.eventsInScript ? [...own, keys.events] : own;
  }

  /**
   * On a Redis Cluster, appends the online/offline a script just decided (on one redis-server the script did). Right
   * after the script, by the instance that ran it: written once, unless this instance dies (or Redis fails it) in
   * between, and then lost (docs/scaling.md). A failure here is logged; the connection is counted all the same.
   */
  private async appendEvent(event: PresenceEvent): Promise<void> {
    if (this.eventsInScript) return;
    const { type, userId, instance, reason, ts } = event;
    const fields = ['type', type, 'userId', userId, 'instance', instance, ...(reason ? ['reason', reason] : []), 'ts', String(ts)];
    await this.redis.xadd(keys.events, 'MAXLEN', '~', String(this.options.eventsMaxLen), '*', ...fields).catch((err: unknown) => {
      this.log.warn({ err: err instanceof Error ? err.message : String(err), event: type, userId }, 'presence event not written to rt:events');
    });
  }

  /**
   * Names `tag` in this instance's index, before the script that adds a held entry under it: an instance that dies
   * after the script is reaped there. Idempotent; one SADD per write, so an index that lost the tag (a failover that
   * dropped a write) is mended by the next write under it.
   */
  private async index(tag: Tag): Promise<void> {
    this.tags.add(tag);
    this.indexedDuringPrune?.add(tag);
    await this.redis.sadd(keys.index(this.id), tag);
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

  /** Liveness, then membership of the instance set: two keys in two slots, so two commands (no MULTI). */
  private async heartbeat(): Promise<void> {
    if (!isReady(this.redis)) return;
    await this.redis.set(keys.instance(this.id), String(Date.now()), 'PX', this.options.instanceTtlMs);
    await this.redis.sadd(keys.instances, this.id);
  }

  /**
   * Redis came back without this connection dropping: a Redis Cluster's failover, where the client stays ready while a
   * master is replaced and the promoted replica may lack the last writes. Reconciles as after a reconnect.
   */
  recovered(): void {
    void this.track(this.onReady());
  }

  /** A heartbeat refused (a cluster not serving yet) leaves the state stale: the maintenance reconciles later. */
  private async onReady(): Promise<void> {
    this.handlers?.onReconnected();
    try {
      await this.heartbeat();
    } catch (err) {
      this.stale = true;
      throw err;
    }
    await this.reconcile();
  }

  /** The periodic maintenance: a reconcile when Redis missed an update, the index pruned, dead instances reaped. */
  private async maintain(): Promise<void> {
    if (!isReady(this.redis)) return;
    if (this.stale) await this.reconcile();
    await this.pruneIndex();
    await this.reapDead();
  }

  /** Every entry `instance` holds in Redis, with the tag it is held under, read by walking its index. */
  private async heldBy(instance: string): Promise<{ tags: Tag[]; entries: [entry: string, tag: Tag][] }> {
    const tags = (await this.redis.smembers(keys.index(instance))).filter(isTag);
    const entries: [string, Tag][] = [];
    for (let i = 0; i < tags.length; i += READ_CHUNK) {
      const chunk = tags.slice(i, i + READ_CHUNK);
      const sets = await Promise.all(chunk.map((tag) => this.redis.smembers(keys.held(tag, instance))));
      sets.forEach((members, k) => {
        for (const entry of members) entries.push([entry, chunk[k]!]);
      });
    }
    return { tags, entries };
  }

  /**
   * Makes Redis hold exactly this instance's local state, announcing what changed for the rest of the cluster. Each
   * entry is checked against the local state as it is when the entry's turn comes (connects and leaves go on meanwhile),
   * and entries with a write under way are left to that write.
   */
  private async reconcile(): Promise<void> {
    // Cleared first: a write that fails while this runs sets it again. A reconcile cut short (a read refused while a
    // cluster does not serve yet, its masters already answering PING) leaves it set: the next maintenance runs it again.
    this.stale = false;
    try {
      await this.rewrite();
    } catch (err) {
      this.stale = true;
      throw err;
    }
  }

  private async rewrite(): Promise<void> {
    const { tags, entries } = await this.heldBy(this.id);
    for (const tag of tags) this.tags.add(tag);
    const stored = new Set(entries.map(([entry]) => entry));
    const wanted = new Map<string, HeldEntry>();
    for (const [userId, conns] of this.localUsers) for (const c of conns) wanted.set(held(['u', userId, c]), ['u', userId, c]);
    for (const [group, userId, sessionId] of this.local.entries()) wanted.set(held(['g', group, sessionId, userId]), ['g', group, sessionId, userId]);

    for (const [entry, tag] of entries) {
      const parts = parseHeld(entry);
      if (this.pending.has(entry) || (parts && this.holds(parts))) continue;
      await this.remove(this.id, tag, entry, 'closed');
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
   * Keeps the index bounded: drops the tags this instance no longer holds anything under. Safe because (1) a tag is
   * dropped only while the local state holds nothing for it and nothing is pending for it, and every write that adds a
   * held entry changes the local state (join) or marks the entry pending (connect, move) synchronously, then indexes
   * its tag, then runs its script; (2) only when its held set in Redis is empty too (an entry the local state does not
   * know, left by a lost answer, keeps the tag: it must stay reapable); (3) not when the tag was indexed again while
   * that was read; (4) the last check and the SREM happen in one turn, and a later write's SADD goes over the same
   * connection (the index's slot) after the SREM, so Redis sees it after.
   */
  private async pruneIndex(): Promise<void> {
    if (this.pruning || !isReady(this.redis)) return;
    const unneeded = () => {
      const pending = new Set<Tag>();
      for (const entry of this.pending) {
        const parts = parseHeld(entry);
        if (parts) pending.add(tagOf(parts));
      }
      return (tag: Tag) => !pending.has(tag) && !(tag.startsWith('u:') ? this.localUsers.has(tag.slice(2)) : this.local.hasGroup(tag.slice(2)));
    };
    const candidates = [...this.tags].filter(unneeded());
    if (candidates.length === 0) return;
    this.pruning = true;
    const indexed = new Set<Tag>();
    this.indexedDuringPrune = indexed;
    try {
      const sizes: number[] = [];
      for (let i = 0; i < candidates.length; i += READ_CHUNK) sizes.push(...(await Promise.all(candidates.slice(i, i + READ_CHUNK).map((tag) => this.redis.scard(keys.held(tag, this.id))))));
      const stillUnneeded = unneeded();
      const drop = candidates.filter((tag, i) => sizes[i] === 0 && !indexed.has(tag) && stillUnneeded(tag));
      if (drop.length === 0) return;
      for (const tag of drop) this.tags.delete(tag);
      await this.redis.srem(keys.index(this.id), ...drop);
    } finally {
      this.indexedDuringPrune = null;
      this.pruning = false;
    }
  }

  /**
   * Looks for instances whose liveness key is gone. Their sessions are orphaned from the moment one is first seen
   * dead; once the orphan TTL has passed, one survivor (the lock's winner) reaps them.
   */
  private async reapDead(): Promise<void> {
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
    }
  }

  /**
   * Removes every entry a dead instance held (walking its index), announcing DOWN transitions; then it is forgotten:
   * its own keys first (one slot, one DEL), the instance set last, so a reaper that dies midway leaves the instance
   * listed and the next one finishes the job (finding nothing left to remove).
   */
  private async reap(instance: string): Promise<void> {
    for (const [entry, tag] of (await this.heldBy(instance)).entries) await this.remove(instance, tag, entry, 'instance-lost');
    await this.redis.del(keys.index(instance), keys.dead(instance), keys.reap(instance));
    await this.redis.srem(keys.instances, instance);
  }

  /** Removes one entry `instance` holds under `tag`, announcing a DOWN it causes. */
  private async remove(instance: string, tag: Tag, entry: string, reason: 'closed' | 'instance-lost'): Promise<void> {
    const parts = parseHeld(entry);
    if (!parts || tagOf(parts) !== tag) {
      await this.redis.srem(keys.held(tag, instance), entry);
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
  return [keys.presence(group), keys.presenceUser(group, userId), keys.held(`g:${group}`, instance), keys.order(group), keys.listed(group), keys.version(group)];
}

/** The tag an entry is held under: its group, or its user. */
function tagOf(entry: HeldEntry): Tag {
  return entry[0] === 'g' ? `g:${entry[1]}` : `u:${entry[1]}`;
}

function isTag(value: string): value is Tag {
  return value.startsWith('g:') || value.startsWith('u:');
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
