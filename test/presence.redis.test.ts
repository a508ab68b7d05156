// Presence across two real gateways on one real redis-server (issue 13): each instance's batches reach members on
// both, counts and member lists are cluster-wide, a user with tabs on both instances is UP once and DOWN once, and a
// batch costs one PUBLISH whatever the number of members. Absence is asserted behind sentinel users joining on each
// instance: one instance's batches reach every member in the order it sent them.
import { describe, expect, it } from 'vitest';
import { startTestGateway } from './helpers/gateway';
import type { ProbeClient, ServerEnvelope } from './helpers/ProbeClient';
import { BATCH_WAIT_MS, diffedBefore, heardBefore, isDiff, joinsOf, member, mentions, type Member, type MemberList, type Seen } from './helpers/presence';
import { hasRedis, useRedis } from './helpers/redis';
import type { Redis } from 'ioredis';


/** The presence_diffs `c` receives until every one of `sentinels` has been in a join (only diffs are consumed). */
async function diffsUntil(c: ProbeClient, sentinels: string[]): Promise<ServerEnvelope[]> {
  const waiting = new Set(sentinels);
  const got: ServerEnvelope[] = [];
  while (waiting.size > 0) {
    const diff = await c.next(isDiff, BATCH_WAIT_MS);
    got.push(diff);
    for (const userId of joinsOf(diff)) waiting.delete(userId);
  }
  return got;
}

/** [userId, status] of the presence_updates `c` receives until each of `sentinels` came UP (those excluded). */
async function updatesUntil(c: ProbeClient, sentinels: string[]): Promise<string[][]> {
  const waiting = new Set(sentinels);
  const got: string[][] = [];
  while (waiting.size > 0) {
    const update = await c.next('presence_update', BATCH_WAIT_MS);
    const userId = update.data!.userId as string;
    if (waiting.has(userId) && update.data!.status === 'UP') waiting.delete(userId);
    else got.push([userId, update.data!.status as string]);
  }
  return got;
}

/** Calls of `command` Redis has served so far (INFO commandstats). */
async function calls(admin: Redis, command: string): Promise<number> {
  const info = await admin.info('commandstats');
  const match = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info);
  return match ? Number(match[1]) : 0;
}

describe.skipIf(!hasRedis)('presence across instances on Redis', () => {
  const redis = useRedis();

  const pair = (env: Record<string, string> = {}) =>
    Promise.all([startTestGateway({ GW_REDIS_URL: redis.server.url, GW_INSTANCE_ID: 'pres-a', ...env }), startTestGateway({ GW_REDIS_URL: redis.server.url, GW_INSTANCE_ID: 'pres-b', ...env })]);

  it('delivers batches from both instances to members on both, each join once, with the cluster-wide count', async () => {
    const [a, b] = await pair({ GW_PRESENCE_BATCH_MS: '300' });
    const watchers = [(await member(a, 'wa', ['g'], { presence: 'diffs' })).client, (await member(b, 'wb', ['g'], { presence: 'diffs' })).client];
    const legacies = [(await member(a, 'la', ['g'])).client, (await member(b, 'lb', ['g'])).client];
    const fromA = ['a1', 'a2', 'a3', 'a4', 'a5'];
    const fromB = ['b1', 'b2', 'b3', 'b4', 'b5'];
    await Promise.all([...fromA.map((u) => member(a, u, ['g'])), ...fromB.map((u) => member(b, u, ['g']))]);
    // Sentinels one after the other: every batch of A comes before sa's, every batch of B before sb's, and sb's UP is
    // the cluster's latest transition, so its batch carries the final count.
    await member(a, 'sa', ['g']);
    const seen = await Promise.all(watchers.map((w) => diffsUntil(w, ['sa'])));
    const { ready } = await member(b, 'sb', ['g']);
    expect(ready.groups[0]!.count).toBe(16);
    for (const [i, w] of watchers.entries()) {
      const diffs = await diffsUntil(w, ['sb']);
      expect(diffs[diffs.length - 1]!.data!.count).toBe(16);
      seen[i]!.push(...diffs);
    }
    // Each join, from either instance, reached diffs members on both instances once.
    for (const diffs of seen) for (const u of [...fromA, ...fromB]) expect(mentions(diffs, u), u).toEqual(['UP']);
    // And one presence_update each to the clients of the first v1 on both.
    for (const l of legacies) {
      const updates = await updatesUntil(l, ['sa', 'sb']);
      const about = updates.filter(([u]) => !['wa', 'wb', 'la', 'lb'].includes(u!));
      expect(about.sort()).toEqual([...fromA, ...fromB].map((u) => [u, 'UP']).sort());
    }
  });

  it('pages one member list across the users of both instances, the same from either', async () => {
    const [a, b] = await pair();
    const users = Array.from({ length: 120 }, (_, i) => `u${String(i).padStart(3, '0')}`);
    for (let i = 0; i < users.length; i += 20) await Promise.all(users.slice(i, i + 20).map((u, j) => member(j % 2 === 0 ? a : b, u, ['g'], { presence: 'diffs' })));
    const readers = [await member(a, 'reader-a', ['g'], { presence: 'diffs' }), await member(b, 'reader-b', ['g'], { presence: 'diffs' })];
    const lists: Member[][] = [];
    for (const { client, ready } of readers) {
      const first = ready.groups[0]!;
      expect(first.members).toHaveLength(100);
      expect(first.count).toBeGreaterThanOrEqual(121);
      expect(first.next).toBe(`${first.members[99]!.since}:${first.members[99]!.userId}`);
      const members: Member[] = [];
      let after: string | undefined;
      for (let pages = 0; pages < 20; pages++) {
        const page = (await client.request('members', { group: 'g', after, limit: 25 })).data as unknown as MemberList;
        expect(page.members.length).toBeLessThanOrEqual(25);
        expect(page.count).toBe(122);
        members.push(...page.members);
        if (page.next === null) break;
        after = page.next;
      }
      expect(members.slice(0, 100)).toEqual((await client.request('members', { group: 'g' })).data!.members);
      lists.push(members);
    }
    expect(lists[0]).toEqual(lists[1]);
    expect(lists[0]!.map((m) => m.userId).sort()).toEqual([...users, 'reader-a', 'reader-b'].sort());
    const ordered = [...lists[0]!].sort((x, y) => x.since - y.since || Buffer.compare(Buffer.from(x.userId), Buffer.from(y.userId)));
    expect(lists[0]).toEqual(ordered);
  });

  it('announces a user with tabs on both instances once: one UP, nothing when one closes, one DOWN after the last', async () => {
    const [a, b] = await pair();
    const wa = (await member(a, 'wa', ['g'], { presence: 'diffs' })).client;
    const wb = (await member(b, 'wb', ['g'], { presence: 'diffs' })).client;
    const lb = (await member(b, 'lb', ['g'])).client;
    const tabA = (await member(a, 'alice', ['g'])).client;
    const tabB = (await member(b, 'alice', ['g'])).client;
    let round = 0;
    /** What wa, wb and lb heard of alice up to sentinels joining on both instances. */
    const heard = async () => {
      round++;
      await Promise.all([member(a, `sa${round}`, ['g']), member(b, `sb${round}`, ['g'])]);
      const sentinels = [`sa${round}`, `sb${round}`];
      return [mentions(await diffsUntil(wa, sentinels), 'alice'), mentions(await diffsUntil(wb, sentinels), 'alice'), (await updatesUntil(lb, sentinels)).filter(([u]) => u === 'alice').map(([, s]) => s)];
    };
    expect(await heard()).toEqual([['UP'], ['UP'], ['UP']]);
    await tabA.close();
    await a.connections(1 + round);
    expect(await heard()).toEqual([[], [], []]);
    await tabB.close();
    await b.connections(2 + round);
    expect(await heard()).toEqual([['DOWN'], ['DOWN'], ['DOWN']]);
  });

  it('sends nothing for a connect and close undone within one batch, but the end state to a member on the other instance who read the list between', async () => {
    const [a, b] = await pair({ GW_PRESENCE_BATCH_MS: '1000' });
    const watcher = (await member(b, 'watcher', ['g'], { presence: 'diffs' })).client;
    const reader = (await member(b, 'reader', ['g'], { presence: 'diffs' })).client;
    const ghost = (await member(a, 'ghost', ['g'])).client;
    // The reader, on B, reads the list while ghost (on A) is UP: its version is the cluster's, from Redis.
    const page = (await reader.request('members', { group: 'g' })).data as unknown as MemberList;
    expect(page.members.map((m) => m.userId)).toContain('ghost');
    await ghost.close();
    await a.connections(0);
    // A's next UP comes after anything A decided about ghost.
    await member(a, 'sentinel', ['g']);
    expect(mentions(await diffsUntil(watcher, ['sentinel']), 'ghost')).toEqual([]);
    expect(mentions(await diffsUntil(reader, ['sentinel']), 'ghost')).toEqual(['DOWN']);
  });

  it('shows a user with a tab on each instance as the most available tab: one presence change per change of it on both, none per tab; invisible is out of lists everywhere', async () => {
    const [a, b] = await pair();
    const watchers = [(await member(a, 'wa', ['g'], { presence: 'diffs' })).client, (await member(b, 'wb', ['g'], { presence: 'diffs' })).client];
    const legacies = [(await member(a, 'la', ['g'])).client, (await member(b, 'lb', ['g'])).client];
    const { client: tabA } = await member(a, 'alice', ['g'], { meta: { device: 'web' } });
    const { client: tabB } = await member(b, 'alice', ['g'], { meta: { device: 'web' } });
    const tabs = { a: tabA, b: tabB };
    const gateways = { a, b };
    let n = 0;
    /** What every member heard of alice after one tab's step, behind a sentinel joining on that tab's instance. */
    const step = async (on: 'a' | 'b', availability: string | null, expected: Seen[]) => {
      if (availability !== null) expect((await tabs[on].request('presence', { availability })).type).toBe('ack');
      const sentinel = `s${n++}`;
      await member(gateways[on], sentinel, ['g']);
      for (const w of watchers) expect(await diffedBefore(w, sentinel, 'alice'), `${sentinel}: ${on} ${availability}`).toEqual(expected);
      const legacyExpected = expected.map(([u, status, shown]): Seen => [u, status, status === 'DOWN' ? expect.any(String) : shown]);
      for (const l of legacies) expect(await heardBefore(l, sentinel, 'alice'), `${sentinel}: ${on} ${availability}`).toEqual(legacyExpected);
    };
    // alice's UP was decided on a (her first tab): the sentinel follows it there, on the same path to b's members. Behind
    // one joining on b it raced a's batch through Redis (once in a loaded run, wb saw the sentinel first).
    await step('a', null, [['alice', 'UP', 'online']]);
    await step('a', 'idle', []);
    await step('b', 'dnd', [['alice', 'UPDATE', 'idle']]);
    await step('a', 'online', [['alice', 'UPDATE', 'online']]);
    await step('a', 'invisible', [['alice', 'UPDATE', 'dnd']]);
    await step('b', 'invisible', [['alice', 'DOWN', '']]);
    for (const c of [...watchers, ...legacies]) {
      const page = (await c.request('members', { group: 'g' })).data as unknown as MemberList;
      expect(page.members.map((m) => m.userId)).not.toContain('alice');
      expect(page.count).toBe(4 + n);
    }
    await step('a', 'idle', [['alice', 'UP', 'idle']]);
    const listed = ((await watchers[1]!.request('members', { group: 'g' })).data as unknown as MemberList).members.find((m) => m.userId === 'alice');
    expect(listed).toMatchObject({ availability: 'idle', meta: { device: 'web' } });
  });

  it('publishes one message per batch, not one per member: PUBLISH calls grow with batches, not with joins × members', async () => {
    const [a, b] = await pair({ GW_PRESENCE_BATCH_MS: '200' });
    const watchersB: ProbeClient[] = [];
    for (let i = 0; i < 10; i++) watchersB.push((await member(b, `wb${i}`, ['g'], { presence: 'diffs' })).client);
    for (let i = 0; i < 10; i++) await member(a, `wa${i}`, ['g'], { presence: 'diffs' });
    // Let the set-up's batches go out before counting.
    await member(a, 'ready-a', ['g']);
    await diffsUntil(watchersB[0]!, ['ready-a']);
    const before = await calls(redis.admin, 'publish');
    const storm = Array.from({ length: 60 }, (_, i) => `storm-${i}`);
    for (let i = 0; i < storm.length; i += 20) await Promise.all(storm.slice(i, i + 20).map((u) => member(a, u, ['g'])));
    await member(a, 'storm-end', ['g']);
    // Every storm join reached a member on the other instance, through A's batches.
    const diffs = await diffsUntil(watchersB[0]!, ['storm-end']);
    for (const u of storm) expect(mentions(diffs, u), u).toEqual(['UP']);
    const published = (await calls(redis.admin, 'publish')) - before;
    // One PUBLISH per batch from A, each seen as one diff on B.
    expect(published).toBe(diffs.length);
    expect(published).toBeLessThan(storm.length / 2);
  });
});
