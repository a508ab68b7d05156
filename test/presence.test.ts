// Presence on one real gateway (issue 13): batches (one presence_diff per batch, one presence_update per change for
// clients of the first v1), changes undone within a batch, member lists capped at 100 with paging through `members`,
// counts-only large groups and presence_watch, multi-tab, and resume. Absence is asserted behind a sentinel user whose
// UP is announced after what is checked (a later batch on the same instance, or the same one).
import { describe, expect, it } from 'vitest';
import { startTestGateway } from './helpers/gateway';
import type { ProbeClient, ServerEnvelope } from './helpers/ProbeClient';
import { applyDiffs, BATCH_WAIT_MS, diffsThrough, isDiff, joinsOf, leavesOf, member, mentions, updatesBefore, type Member, type MemberList, type Ready } from './helpers/presence';

const seqOf = (e: ServerEnvelope) => (e as unknown as { seq?: number }).seq;

/** The whole member list through `members`, `limit` at a time. */
async function pageAll(c: ProbeClient, group: string, limit: number): Promise<{ members: Member[]; pages: MemberList[] }> {
  const pages: MemberList[] = [];
  let after: string | undefined;
  for (;;) {
    const reply = await c.request('members', { group, after, limit });
    expect(reply.type, JSON.stringify(reply.data)).toBe('members');
    const page = reply.data as unknown as MemberList;
    pages.push(page);
    if (page.next === null) break;
    after = page.next;
  }
  return { members: pages.flatMap((p) => p.members), pages };
}

/** The list order: by since, then user id in UTF-8 byte order. */
const listOrder = (a: Member, b: Member) => a.since - b.since || Buffer.compare(Buffer.from(a.userId), Buffer.from(b.userId));

describe('presence batches', () => {
  it('announces many joins in one batch as ONE presence_diff, and as one presence_update per join to clients of the first v1', async () => {
    // A long period, so 25 parallel joins on a loaded machine still fall within one.
    const gw = await startTestGateway({ GW_PRESENCE_BATCH_MS: '1500' });
    const { client: diffs } = await member(gw, 'watcher', ['g'], { presence: 'diffs' });
    const { client: legacy } = await member(gw, 'legacy', ['g']);
    const users = Array.from({ length: 25 }, (_, i) => `user-${String(i).padStart(2, '0')}`);
    // All join at once, well within one batch period; each with its own meta.
    const joined = await Promise.all(users.map((userId) => member(gw, userId, ['g'], { meta: { who: userId } })));
    const first = await diffs.next((e) => isDiff(e) && joinsOf(e).includes('user-00'), BATCH_WAIT_MS);
    // (The batch may carry the watchers' own UPs too.)
    expect(joinsOf(first).filter((u) => u.startsWith('user-')).sort()).toEqual(users);
    expect(leavesOf(first)).toEqual([]);
    expect(first.data!.count).toBe(27);
    // Each join as the member list shows it: the joiner's meta, and the since of its ready.
    const listed = new Map(joined.map(({ ready }, i) => [users[i]!, ready.groups[0]!.members.find((m) => m.userId === users[i])!]));
    for (const join of first.data!.joins as Member[]) if (listed.has(join.userId)) expect(join).toEqual(listed.get(join.userId));
    // The legacy client: one presence_update per join, and nothing else about them, up to a later sentinel.
    await member(gw, 'sentinel', ['g']);
    const perChange = await updatesBefore(legacy, 'sentinel');
    expect(perChange.filter(([userId]) => userId !== 'watcher').sort()).toEqual(users.map((u) => [u, 'UP']));
    // And no second diff about them: the sentinel's batch is the next one.
    const rest = await diffsThrough(diffs, 'sentinel');
    expect(rest.flatMap(joinsOf)).toEqual(['sentinel']);
  });

  it('sends nothing for a connect and close undone within one batch, but the end state to a member whose list was read between', async () => {
    const gw = await startTestGateway({ GW_PRESENCE_BATCH_MS: '1000' });
    const { client: watcher } = await member(gw, 'watcher', ['g'], { presence: 'diffs' });
    const { client: legacy } = await member(gw, 'legacy', ['g']);
    const { client: reader } = await member(gw, 'reader', ['g'], { presence: 'diffs' });
    const { client: legacyReader } = await member(gw, 'legacy-reader', ['g']);
    const { client: ghost } = await member(gw, 'ghost', ['g']);
    // Two members read the list while ghost is UP.
    for (const c of [reader, legacyReader]) {
      const page = (await c.request('members', { group: 'g' })).data as unknown as MemberList;
      expect(page.members.map((m) => m.userId)).toContain('ghost');
    }
    await ghost.close();
    await gw.connections(4);
    await member(gw, 'sentinel', ['g']);
    // Neither member who never saw ghost hears of ghost.
    expect(mentions(await diffsThrough(watcher, 'sentinel'), 'ghost')).toEqual([]);
    expect((await updatesBefore(legacy, 'sentinel')).filter(([userId]) => userId === 'ghost')).toEqual([]);
    // The readers get ghost's end state, once, so their lists end right.
    expect(mentions(await diffsThrough(reader, 'sentinel'), 'ghost')).toEqual(['DOWN']);
    expect((await updatesBefore(legacyReader, 'sentinel')).filter(([userId]) => userId === 'ghost')).toEqual([['ghost', 'DOWN']]);
  });

  it('sends nothing for a reconnect (DOWN then UP) within one batch that shows as before, but the UP to a member whose list missed the user', async () => {
    const gw = await startTestGateway({ GW_PRESENCE_BATCH_MS: '1000' });
    const { client: flipper } = await member(gw, 'flip', ['g'], { meta: { tab: 1 } });
    const { client: watcher } = await member(gw, 'watcher', ['g'], { presence: 'diffs' });
    const { client: reader } = await member(gw, 'reader', ['g'], { presence: 'diffs' });
    // Let flip's UP go out first, so the DOWN and UP that follow start from UP.
    await member(gw, 'start', ['g']);
    await diffsThrough(watcher, 'start');
    await diffsThrough(reader, 'start');
    await flipper.close();
    await gw.connections(3);
    const page = (await reader.request('members', { group: 'g' })).data as unknown as MemberList;
    expect(page.members.map((m) => m.userId)).not.toContain('flip');
    const { ready } = await member(gw, 'flip', ['g'], { meta: { tab: 1 } });
    await member(gw, 'sentinel', ['g']);
    expect(mentions(await diffsThrough(watcher, 'sentinel'), 'flip')).toEqual([]);
    const readerDiffs = await diffsThrough(reader, 'sentinel');
    expect(mentions(readerDiffs, 'flip')).toEqual(['UP']);
    const flip = readerDiffs.flatMap((d) => d.data!.joins as Member[]).find((m) => m.userId === 'flip');
    expect(flip).toEqual(ready.groups[0]!.members.find((m) => m.userId === 'flip'));
  });

  it('sends one UPDATE to every member for a reconnect within one batch that shows otherwise', async () => {
    const gw = await startTestGateway({ GW_PRESENCE_BATCH_MS: '1000' });
    const { client: flipper } = await member(gw, 'flip', ['g'], { meta: { tab: 1 } });
    const { client: watcher } = await member(gw, 'watcher', ['g'], { presence: 'diffs' });
    const { client: legacy } = await member(gw, 'legacy', ['g']);
    await member(gw, 'start', ['g']);
    await diffsThrough(watcher, 'start');
    await updatesBefore(legacy, 'start');
    await flipper.close();
    await gw.connections(3);
    const { ready } = await member(gw, 'flip', ['g'], { meta: { tab: 2 }, availability: 'idle' });
    await member(gw, 'sentinel', ['g']);
    const diffs = await diffsThrough(watcher, 'sentinel');
    expect(mentions(diffs, 'flip')).toEqual(['UPDATE']);
    const flip = diffs.flatMap((d) => (d.data!.updates ?? []) as Member[]).find((m) => m.userId === 'flip');
    expect(flip).toEqual(ready.groups[0]!.members.find((m) => m.userId === 'flip'));
    expect(flip).toMatchObject({ meta: { tab: 2 }, availability: 'idle' });
    expect((await updatesBefore(legacy, 'sentinel')).filter(([u]) => u === 'flip')).toEqual([['flip', 'UPDATE']]);
  });

  // A group that empties goes on numbering (versions used to start again, and a batch then took alice's reconnect for
  // a leave). Here alice, alone in g, reconnects while carol joins, all within one batch: alice ends UP, so carol's
  // list (her ready, then her diffs applied) must end with both of them, and the count at 2.
  it('keeps a list right when the group emptied and filled again within one batch', async () => {
    const gw = await startTestGateway({ GW_PRESENCE_BATCH_MS: '1000' });
    const { client: alice } = await member(gw, 'alice', ['g'], { presence: 'diffs' });
    await alice.close();
    await gw.connections(0);
    const { client: carol, ready } = await member(gw, 'carol', ['g'], { presence: 'diffs' });
    await member(gw, 'alice', ['g'], { presence: 'diffs' });
    // carol applies every diff to her list, up to a sentinel's UP.
    await member(gw, 'sentinel', ['g']);
    const { list, count } = applyDiffs(ready.groups[0]!, await diffsThrough(carol, 'sentinel'));
    const actual = (await carol.request('members', { group: 'g' })).data as unknown as MemberList;
    expect([...list.keys()].sort()).toEqual(actual.members.map((m) => m.userId).sort());
    expect(count).toBe(actual.count);
  });
  // The same, seen from the next batch: alice and bob leave g empty while carol joins, all within one batch; alice
  // comes back in a later batch, and a sentinel after her. With versions started again, the fan-out's stale-change
  // filter held "alice at v4" for its reorder window and dropped her return, and its count stayed at 0.
  it('announces a user who comes back after the group emptied and refilled within one batch', async () => {
    const gw = await startTestGateway({ GW_PRESENCE_BATCH_MS: '1000' });
    // One timer flushes every group's batch at once: h-watch hearing of h-mark means g's batch of that period went out.
    const { client: hWatch } = await member(gw, 'h-watch', ['h'], { presence: 'diffs' });
    const { client: alice } = await member(gw, 'alice', ['g']);
    const { client: bob } = await member(gw, 'bob', ['g']);
    await bob.close();
    await gw.connections(2);
    await alice.close();
    await gw.connections(1);
    const { client: carol, ready } = await member(gw, 'carol', ['g'], { presence: 'diffs' });
    await member(gw, 'h-mark', ['h']);
    await diffsThrough(hWatch, 'h-mark');
    await member(gw, 'alice', ['g']);
    await member(gw, 'sentinel', ['g']);
    const { list, count } = applyDiffs(ready.groups[0]!, await diffsThrough(carol, 'sentinel'));
    const actual = (await carol.request('members', { group: 'g' })).data as unknown as MemberList;
    expect(actual.members.map((m) => m.userId).sort()).toEqual(['alice', 'carol', 'sentinel']);
    expect({ listed: [...list.keys()].sort(), count }).toEqual({ listed: ['alice', 'carol', 'sentinel'], count: 3 });
  });
});

describe('member lists', () => {
  it('caps ready and subscribed at 100 members with count and next, and pages the rest through members', async () => {
    const gw = await startTestGateway();
    const users = Array.from({ length: 130 }, (_, i) => `u${String(i).padStart(3, '0')}`);
    // In chunks: many of them join within one millisecond, so the list's ties on since are exercised too.
    for (let i = 0; i < users.length; i += 26) await Promise.all(users.slice(i, i + 26).map((u) => member(gw, u, ['g'], { presence: 'diffs' })));
    const { client: reader, ready } = await member(gw, 'reader', ['g'], { presence: 'diffs', grants: ['g', 'h'] });
    const first = ready.groups[0]!;
    expect(first.members).toHaveLength(100);
    expect(first.count).toBe(131);
    const hundredth = first.members[99]!;
    expect(first.next).toBe(`${hundredth.since}:${hundredth.userId}`);
    const rest = await reader.request('members', { group: 'g', after: first.next, limit: 1000 });
    expect(rest.data).toMatchObject({ group: 'g', count: 131, next: null });
    const everyone = [...first.members, ...(rest.data!.members as Member[])];
    expect(everyone.map((m) => m.userId).sort()).toEqual([...users, 'reader'].sort());
    expect([...everyone].sort(listOrder)).toEqual(everyone);
    // Paged 40 at a time, from the start: the same list, each page at most 40, each next the cursor of its last.
    const { members, pages } = await pageAll(reader, 'g', 40);
    expect(members).toEqual(everyone);
    expect(pages.map((p) => p.members.length)).toEqual([40, 40, 40, 11]);
    for (const p of pages.slice(0, -1)) expect(p.next).toBe(`${p.members[39]!.since}:${p.members[39]!.userId}`);
    for (const p of pages) expect(p.count).toBe(131);
    // Without a limit: 100.
    expect(((await reader.request('members', { group: 'g' })).data!.members as Member[]).map((m) => m.userId)).toEqual(first.members.map((m) => m.userId));
    // subscribed carries a capped first page too, and a client of the first v1 gets the same shape.
    const { client: legacy } = await member(gw, 'legacy', [], { grants: ['g'] });
    const subscribed = await legacy.request('subscribe', { group: 'g' });
    expect(subscribed.type).toBe('subscribed');
    const page = subscribed.data as unknown as MemberList;
    expect(page).toMatchObject({ group: 'g', count: 132 });
    expect(page.members).toEqual(everyone.slice(0, 100));
    expect(page.next).toBe(first.next);
  });

  it('refuses members for a group the connection is not in (FORBIDDEN) and a bad cursor or limit (INVALID_ENVELOPE), and stays usable', async () => {
    const gw = await startTestGateway();
    const { client } = await member(gw, 'alice', ['g'], { grants: ['g', 'h'] });
    const code = async (data: unknown) => {
      const reply = await client.request('members', data);
      return reply.type === 'error' ? reply.data!.code : reply.type;
    };
    expect(await code({ group: 'h' })).toBe('FORBIDDEN');
    expect(await code({ group: 'nobody-grants-this' })).toBe('FORBIDDEN');
    expect(await code({ group: 'g', after: 'not-a-cursor' })).toBe('INVALID_ENVELOPE');
    expect(await code({ group: 'g', after: '12:' })).toBe('INVALID_ENVELOPE');
    expect(await code({ group: 'g', after: `1:${'x'.repeat(299)}` })).toBe('INVALID_ENVELOPE');
    expect(await code({ group: 'g', limit: 0 })).toBe('INVALID_ENVELOPE');
    expect(await code({ group: 'g', limit: 1001 })).toBe('INVALID_ENVELOPE');
    expect(await code({ group: 'g', limit: 1.5 })).toBe('INVALID_ENVELOPE');
    // The bounds themselves, and a well-formed cursor nobody is at.
    expect(await code({ group: 'g', limit: 1 })).toBe('members');
    expect(await code({ group: 'g', limit: 1000 })).toBe('members');
    expect((await client.request('members', { group: 'g', after: '1:zzz', limit: 10 })).data).toMatchObject({ members: [{ userId: 'alice' }], count: 1, next: null });
    expect(await code({ group: 'g', after: '9999999999999:a' })).toBe('members');
    // presence_watch needs membership too.
    const watch = await client.request('presence_watch', { group: 'h', watch: true });
    expect(watch.data).toMatchObject({ code: 'FORBIDDEN' });
    expect(await client.barrier()).toEqual([]);
    expect(client.socket.readyState).toBe(client.socket.OPEN);
  });
});

describe('large groups', () => {
  it('sends counts only: presence_count to diffs clients, nothing to clients of the first v1, every change to a presence_watch client', async () => {
    const gw = await startTestGateway({ GW_PRESENCE_LARGE_GROUP: '3', GW_PRESENCE_COUNT_INTERVAL_MS: '200' });
    const { client: counts } = await member(gw, 'counts', ['g'], { presence: 'diffs' });
    const { client: legacy } = await member(gw, 'legacy', ['g']);
    const { client: watcher } = await member(gw, 'watcher', ['g'], { presence: 'diffs' });
    const { client: publisher } = await member(gw, 'publisher', ['g']);
    // Four users: above 3, the group is large.
    expect((await watcher.request('presence_watch', { group: 'g', watch: true })).type).toBe('ack');
    const { ready } = await member(gw, 'n1', ['g'], { meta: { n: 1 } });
    // The watcher gets the change as a diff (written in the same pass as everyone's share of that batch).
    const diffs = await diffsThrough(watcher, 'n1');
    const last = diffs[diffs.length - 1]!;
    expect((last.data!.joins as Member[]).find((m) => m.userId === 'n1')).toEqual(ready.groups[0]!.members.find((m) => m.userId === 'n1'));
    expect(last.data!.count).toBe(5);
    // The counts client gets presence_count, unnumbered.
    const count = await counts.next((e) => e.type === 'presence_count' && e.data!.count === 5, BATCH_WAIT_MS);
    expect(count.data).toEqual({ group: 'g', count: 5 });
    expect(seqOf(count)).toBeUndefined();
    // Sentinel: a data_update published after all that.
    await publisher.request('data_update', { group: 'g', payload: 'end' });
    const isEnd = (e: ServerEnvelope) => e.type === 'data_update' && e.data!.payload === 'end';
    const isEnd2 = (e: ServerEnvelope) => e.type === 'data_update' && e.data!.payload === 'end 2';
    expect((await counts.before(isEnd)).filter((e) => isDiff(e) && joinsOf(e).includes('n1'))).toEqual([]);
    expect((await legacy.before(isEnd)).filter((e) => e.type === 'presence_update' && e.data!.userId === 'n1')).toEqual([]);

    // presence_watch off: the watcher gets counts like everyone in diffs mode.
    expect((await watcher.request('presence_watch', { group: 'g', watch: false })).type).toBe('ack');
    await member(gw, 'n2', ['g']);
    await watcher.next((e) => e.type === 'presence_count' && e.data!.count === 6, BATCH_WAIT_MS);
    await counts.next((e) => e.type === 'presence_count' && e.data!.count === 6, BATCH_WAIT_MS);
    await publisher.request('data_update', { group: 'g', payload: 'end 2' });
    expect((await watcher.before(isEnd2)).filter((e) => isDiff(e) && joinsOf(e).includes('n2'))).toEqual([]);
    expect((await legacy.before(isEnd2)).filter((e) => e.type === 'presence_update' && e.data!.userId === 'n2')).toEqual([]);

    // Watching again, then leaving the group and joining it again: the watch ended with the leave.
    expect((await watcher.request('presence_watch', { group: 'g', watch: true })).type).toBe('ack');
    await member(gw, 'n3', ['g']);
    await diffsThrough(watcher, 'n3');
    expect((await watcher.request('unsubscribe', { group: 'g' })).type).toBe('unsubscribed');
    expect((await watcher.request('subscribe', { group: 'g' })).data).toMatchObject({ count: 7 });
    await member(gw, 'n4', ['g']);
    await watcher.next((e) => e.type === 'presence_count' && e.data!.count === 8, BATCH_WAIT_MS);
    await publisher.request('data_update', { group: 'g', payload: 'end 3' });
    expect((await watcher.before((e) => e.type === 'data_update' && e.data!.payload === 'end 3')).filter((e) => isDiff(e) && joinsOf(e).includes('n4'))).toEqual([]);
  });
});

describe('presence across tabs and resumes', () => {
  it('announces a user with two tabs once: one UP, nothing when one tab closes, one DOWN after the last', async () => {
    const gw = await startTestGateway();
    const { client: diffs } = await member(gw, 'watcher', ['g'], { presence: 'diffs' });
    const { client: legacy } = await member(gw, 'legacy', ['g']);
    const { client: tab1 } = await member(gw, 'alice', ['g'], { meta: { device: 'web' } });
    const { client: tab2 } = await member(gw, 'alice', ['g'], { meta: { device: 'web' } });
    await member(gw, 's1', ['g']);
    expect(mentions(await diffsThrough(diffs, 's1'), 'alice')).toEqual(['UP']);
    expect((await updatesBefore(legacy, 's1')).filter(([u]) => u === 'alice')).toEqual([['alice', 'UP']]);
    await tab1.close();
    await gw.connections(4);
    await member(gw, 's2', ['g']);
    expect(mentions(await diffsThrough(diffs, 's2'), 'alice')).toEqual([]);
    expect((await updatesBefore(legacy, 's2')).filter(([u]) => u === 'alice')).toEqual([]);
    // alice is still listed, now by her remaining tab.
    const list = (await diffs.request('members', { group: 'g' })).data!.members as Member[];
    expect(list.find((m) => m.userId === 'alice')).toMatchObject({ meta: { device: 'web' }, availability: 'online' });
    await tab2.close();
    await gw.connections(4);
    await member(gw, 's3', ['g']);
    expect(mentions(await diffsThrough(diffs, 's3'), 'alice')).toEqual(['DOWN']);
    expect((await updatesBefore(legacy, 's3')).filter(([u]) => u === 'alice')).toEqual([['alice', 'DOWN']]);
  });

  it('resumes without a flap, and replays the presence_diff missed while away', async () => {
    const gw = await startTestGateway();
    const { client: watcher } = await member(gw, 'watcher', ['g'], { presence: 'diffs' });
    const { client: legacy } = await member(gw, 'legacy', ['g']);
    const { client: away, ready } = await member(gw, 'alice', ['g'], { presence: 'diffs' });
    await member(gw, 's1', ['g']);
    await diffsThrough(watcher, 's1');
    await updatesBefore(legacy, 's1');
    const seen = await diffsThrough(away, 's1');
    const lastSeq = Math.max(0, ...seen.map((e) => seqOf(e) ?? 0));
    // A drop without a close frame: the session is orphaned, alice stays UP.
    away.socket.terminate();
    await gw.connections(3);
    await member(gw, 'newbie', ['g']);
    // Nothing about alice while she is away either (a DOWN at the drop would come before newbie's UP).
    expect(mentions(await diffsThrough(watcher, 'newbie'), 'alice')).toEqual([]);
    const back = await gw.connect();
    const reply = await back.request('identify', { token: await gw.token({ sub: 'alice', groups: ['g'] }), resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq } });
    expect(reply.data).toMatchObject({ resumed: true, sessionId: ready.sessionId });
    expect((reply.data as unknown as Ready).groups[0]!.members.map((m) => m.userId)).toContain('newbie');
    // The replay: newbie's diff, numbered right after what alice had seen.
    const replayed = await back.next((e) => isDiff(e) && joinsOf(e).includes('newbie'));
    expect(seqOf(replayed)).toBe(lastSeq + 1);
    // No flap: nobody heard alice go DOWN or come UP.
    await member(gw, 's2', ['g']);
    expect(mentions(await diffsThrough(watcher, 's2'), 'alice')).toEqual([]);
    expect((await updatesBefore(legacy, 's2')).filter(([u]) => u === 'alice')).toEqual([]);
    // The resumed session goes on live, in its mode.
    expect(mentions(await diffsThrough(back, 's2'), 's2')).toEqual(['UP']);
  });
});
