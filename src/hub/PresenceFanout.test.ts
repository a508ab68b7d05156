// PresenceFanout over real Sessions with a fake connection: each session gets a batch in its mode (presence_diff or
// presence_update), large groups get counts only (throttled) but for watchers, member lists read at a version decide
// what a session still needs, and a late older change from another instance is dropped within the reorder window.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Metrics } from '../metrics';
import type { GroupName, UserId } from '../types/domain';
import type { BatchedChange, PresenceBatch, PresenceMode } from '../types/signals';
import type { ConnectionContext } from './ConnectionContext';
import { PresenceFanout, type PresenceFanoutOptions } from './PresenceFanout';
import { Session } from './Session';

const GROUP = 'g';

interface Received {
  type: string;
  data: Record<string, unknown>;
  seq?: number;
}

/** A session on a fake connection that decodes what it is written: sequenced bodies and whole text frames. */
class Probe {
  readonly got: Received[] = [];
  readonly session: Session;

  constructor(userId: UserId, mode: PresenceMode) {
    const conn = {
      sendSequenced: (body: Buffer, seq: number) => this.got.push(JSON.parse(`${body.toString()},"seq":${seq}}`) as Received),
      sendFrame: (frame: Buffer) => this.got.push(JSON.parse(payloadOf(frame)) as Received),
    };
    this.session = new Session(userId, 'client', ['*'], {}, Date.now(), conn as unknown as ConnectionContext, { bufferMessages: 100, bufferBytes: 1_000_000 });
    this.session.presenceMode = mode;
  }

  /** Takes what arrived so far. */
  take(): Received[] {
    return this.got.splice(0);
  }
}

/** The payload of an unmasked server text frame. */
function payloadOf(frame: Buffer): string {
  const len = frame[1]! & 0x7f;
  const header = len < 126 ? 2 : len === 126 ? 4 : 10;
  return frame.subarray(header).toString();
}

const metrics = () => new Metrics({ connections: () => 0, sessions: () => 0, groups: () => 0, redis: () => undefined, dropped: () => 0, invalid: () => 0 });

/** A fanout over the given probes, all in GROUP. */
function fanout(probes: Probe[], options: Partial<PresenceFanoutOptions> = {}): PresenceFanout {
  const members = new Set(probes.map((p) => p.session));
  const made = new PresenceFanout({ largeGroup: 1_000, countIntervalMs: 1_000, reorderWindowMs: 2_000, ...options }, (group: GroupName) => (group === GROUP ? members : undefined), metrics());
  running.push(made);
  return made;
}

const running: PresenceFanout[] = [];

afterEach(() => {
  for (const f of running.splice(0)) f.stop();
  vi.useRealTimers();
});

const change = (userId: UserId, status: 'UP' | 'DOWN', version: number, undoneFrom: number | null = null, meta: Record<string, unknown> = {}): BatchedChange => ({
  userId,
  status,
  meta,
  since: 1_000 + version,
  availability: 'online',
  version,
  undoneFrom,
});

function batch(changes: BatchedChange[], count: number): PresenceBatch {
  return { group: GROUP, changes, count, version: Math.max(...changes.map((c) => c.version)) };
}

const updates = (got: Received[]) => got.map((e) => [e.type, e.data.userId, e.data.status, e.seq]);

describe('PresenceFanout', () => {
  it('writes one presence_diff to a diffs session and one presence_update per change to an updates session, numbered', () => {
    const diffs = new Probe('dora', 'diffs');
    const legacy = new Probe('lee', 'updates');
    const f = fanout([diffs, legacy]);
    f.deliver(batch([change('alice', 'UP', 3, null, { device: 'ios' }), change('bob', 'DOWN', 4)], 5), 'gw-a');
    expect(diffs.take()).toEqual([{ type: 'presence_diff', data: { group: GROUP, joins: [{ userId: 'alice', meta: { device: 'ios' }, since: 1_003, availability: 'online' }], leaves: ['bob'], count: 5 }, ts: expect.any(Number), seq: 1 }]);
    const got = legacy.take();
    expect(updates(got)).toEqual([
      ['presence_update', 'alice', 'UP', 1],
      ['presence_update', 'bob', 'DOWN', 2],
    ]);
    expect(got[0]!.data).toEqual({ group: GROUP, userId: 'alice', status: 'UP', meta: { device: 'ios' }, availability: 'online' });
  });

  it('skips the session’s own user in updates mode; a diff lists it', () => {
    const alice = new Probe('alice', 'updates');
    const aliceDiffs = new Probe('alice', 'diffs');
    const f = fanout([alice, aliceDiffs]);
    f.deliver(batch([change('alice', 'UP', 1), change('bob', 'UP', 2)], 2), 'gw-a');
    expect(updates(alice.take())).toEqual([['presence_update', 'bob', 'UP', 1]]);
    expect(aliceDiffs.take().map((e) => (e.data.joins as { userId: string }[]).map((j) => j.userId))).toEqual([['alice', 'bob']]);
    // A batch about alice alone: nothing to her updates session.
    f.deliver(batch([change('alice', 'DOWN', 3)], 1), 'gw-a');
    expect(alice.take()).toEqual([]);
    expect(aliceDiffs.take().map((e) => e.data.leaves)).toEqual([['alice']]);
  });

  it('in a large group writes counts only to diffs sessions, nothing to updates sessions, and every change to watchers', () => {
    vi.useFakeTimers();
    const diffs = new Probe('dora', 'diffs');
    const legacy = new Probe('lee', 'updates');
    const watcher = new Probe('will', 'diffs');
    const legacyWatcher = new Probe('wes', 'updates');
    watcher.session.watching.add(GROUP);
    legacyWatcher.session.watching.add(GROUP);
    const f = fanout([diffs, legacy, watcher, legacyWatcher], { largeGroup: 3 });
    f.deliver(batch([change('alice', 'UP', 10), change('bob', 'DOWN', 11)], 4), 'gw-a');
    expect(watcher.take().map((e) => [e.type, e.data.count])).toEqual([['presence_diff', 4]]);
    expect(updates(legacyWatcher.take())).toEqual([
      ['presence_update', 'alice', 'UP', 1],
      ['presence_update', 'bob', 'DOWN', 2],
    ]);
    // The count goes out from a timer, unnumbered.
    expect(diffs.take()).toEqual([]);
    vi.advanceTimersByTime(0);
    expect(diffs.take()).toEqual([{ type: 'presence_count', data: { group: GROUP, count: 4 }, ts: expect.any(Number) }]);
    expect(legacy.take()).toEqual([]);
    expect(watcher.take()).toEqual([]);
    // At exactly largeGroup users the group is small: diffs and updates again, no count.
    f.deliver(batch([change('carol', 'DOWN', 12)], 3), 'gw-a');
    vi.advanceTimersByTime(5_000);
    expect(diffs.take().map((e) => [e.type, e.data.leaves, e.data.count])).toEqual([['presence_diff', ['carol'], 3]]);
    expect(updates(legacy.take())).toEqual([['presence_update', 'carol', 'DOWN', 1]]);
  });

  it('throttles presence_count to one per interval, the latest count, and only when it changed', () => {
    vi.useFakeTimers();
    const diffs = new Probe('dora', 'diffs');
    const f = fanout([diffs], { largeGroup: 10, countIntervalMs: 1_000 });
    const counts = () => diffs.take().map((e) => [e.type, e.data.count]);
    f.deliver(batch([change('u1', 'UP', 1)], 11), 'gw-a');
    vi.advanceTimersByTime(0);
    expect(counts()).toEqual([['presence_count', 11]]);
    vi.advanceTimersByTime(100);
    f.deliver(batch([change('u2', 'UP', 2)], 12), 'gw-a');
    vi.advanceTimersByTime(100);
    f.deliver(batch([change('u3', 'UP', 3)], 13), 'gw-a');
    vi.advanceTimersByTime(799);
    expect(counts()).toEqual([]);
    // One second after the first: the latest count, once.
    vi.advanceTimersByTime(1);
    expect(counts()).toEqual([['presence_count', 13]]);
    vi.advanceTimersByTime(5_000);
    expect(counts()).toEqual([]);
    // A batch that leaves the count where it was sent sends no count.
    f.deliver(batch([change('u4', 'UP', 4), change('u3', 'DOWN', 5)], 13), 'gw-a');
    vi.advanceTimersByTime(5_000);
    expect(counts()).toEqual([]);
    // Long after the last one, a changed count goes out at once.
    f.deliver(batch([change('u5', 'UP', 6)], 14), 'gw-a');
    vi.advanceTimersByTime(0);
    expect(counts()).toEqual([['presence_count', 14]]);
  });

  it('writes the net changes, never the undone ones, to a session whose member list was read after every change of the batch', () => {
    // A batch numbered before a session's ready may reach it after its list: it still gets the batch, which sets the
    // states its list already shows (docs/protocol.md, presence_diff), and nothing undone.
    const before = new Probe('b4', 'diffs');
    const at = new Probe('at', 'diffs');
    const after = new Probe('after', 'updates');
    before.session.noteListed(GROUP, 6, true);
    at.session.noteListed(GROUP, 8, true);
    after.session.noteListed(GROUP, 9, true);
    const f = fanout([before, at, after]);
    f.deliver(batch([change('alice', 'UP', 5), change('ghost', 'DOWN', 7, 6), change('bob', 'UP', 8)], 2), 'gw-a');
    const joins = (p: Probe) => p.take().map((e) => [(e.data.joins as { userId: string }[]).map((j) => j.userId), e.data.leaves]);
    // Read at 6 (ghost UP in the list): every change, ghost's end state included.
    expect(joins(before)).toEqual([[['alice', 'bob'], ['ghost']]]);
    expect(joins(at)).toEqual([[['alice', 'bob'], []]]);
    expect(updates(after.take())).toEqual([
      ['presence_update', 'alice', 'UP', 1],
      ['presence_update', 'bob', 'UP', 2],
    ]);
    // A list read in another group says nothing about this one.
    const other = new Probe('other', 'diffs');
    other.session.noteListed('h', 6, true);
    fanout([other]).deliver(batch([change('ghost', 'DOWN', 7, 6)], 3), 'gw-a');
    expect(other.take()).toEqual([]);
  });

  it('gives undone end states to a session any of whose list pages was read while the change was in effect, until it reads a first page again', () => {
    const paged = new Probe('paged', 'diffs');
    // Page 1 at 4, page 2 at 9: the list may show anything from between, ghost UP (6 to 7) included.
    paged.session.noteListed(GROUP, 4, true);
    paged.session.noteListed(GROUP, 9, false);
    const f = fanout([paged]);
    f.deliver(batch([change('ghost', 'DOWN', 7, 6)], 3), 'gw-a');
    expect(paged.take().map((e) => e.data.leaves)).toEqual([['ghost']]);
    // A first page read afresh at 10 starts the list anew: an undone change from 6 to 7 is not in it.
    paged.session.noteListed(GROUP, 10, true);
    f.deliver(batch([change('ghost', 'DOWN', 7, 6), change('carol', 'UP', 11)], 4), 'gw-a');
    expect(paged.take().map((e) => [e.data.joins, e.data.leaves])).toEqual([[[{ userId: 'carol', meta: {}, since: 1_011, availability: 'online' }], []]]);
  });

  it('gives the end state of a change undone within the batch only to sessions whose list was read while it was in effect', () => {
    // alice UP at 5, DOWN at 6 (undone); carol DOWN at 7, UP at 8 (undone: a reconnect); bob UP at 9.
    const changes = [change('alice', 'DOWN', 6, 5), change('carol', 'UP', 8, 7, { tab: 2 }), change('bob', 'UP', 9)];
    const early = new Probe('early', 'diffs'); // read at 4: before any of it
    const sawAlice = new Probe('sawAlice', 'diffs'); // read at 5: lists alice
    const sawAliceLegacy = new Probe('sawAliceLegacy', 'updates');
    const missedCarol = new Probe('missedCarol', 'updates'); // read at 7: carol missing from the list
    const late = new Probe('late', 'diffs'); // read at 8: after both undone changes, before bob
    const unread = new Probe('unread', 'diffs'); // never read (joined without a list yet)
    early.session.noteListed(GROUP, 4, true);
    sawAlice.session.noteListed(GROUP, 5, true);
    sawAliceLegacy.session.noteListed(GROUP, 5, true);
    missedCarol.session.noteListed(GROUP, 7, true);
    late.session.noteListed(GROUP, 8, true);
    const f = fanout([early, sawAlice, sawAliceLegacy, missedCarol, late, unread]);
    f.deliver(batch(changes, 3), 'gw-a');
    const diffOf = (p: Probe) => p.take().map((e) => [(e.data.joins as { userId: string }[]).map((j) => j.userId), e.data.leaves]);
    const net = [[['bob'], []]];
    expect(diffOf(early)).toEqual(net);
    expect(diffOf(unread)).toEqual(net);
    expect(diffOf(late)).toEqual(net);
    const full = [[['carol', 'bob'], ['alice']]];
    expect(diffOf(sawAlice)).toEqual(full);
    expect(updates(sawAliceLegacy.take())).toEqual([
      ['presence_update', 'alice', 'DOWN', 1],
      ['presence_update', 'carol', 'UP', 2],
      ['presence_update', 'bob', 'UP', 3],
    ]);
    const got = missedCarol.take();
    expect(updates(got)).toEqual([
      ['presence_update', 'alice', 'DOWN', 1],
      ['presence_update', 'carol', 'UP', 2],
      ['presence_update', 'bob', 'UP', 3],
    ]);
    expect(got[1]!.data.meta).toEqual({ tab: 2 });
  });

  it('writes nothing for a batch whose every change was undone, but the end states to a session that read its list between', () => {
    const member = new Probe('member', 'diffs');
    const reader = new Probe('reader', 'diffs');
    member.session.noteListed(GROUP, 2, true);
    reader.session.noteListed(GROUP, 3, true);
    fanout([member, reader]).deliver(batch([change('ghost', 'DOWN', 4, 3)], 2), 'gw-a');
    expect(member.take()).toEqual([]);
    expect(reader.take().map((e) => [e.type, e.data.joins, e.data.leaves, e.data.count])).toEqual([['presence_diff', [], ['ghost'], 2]]);
  });

  it('drops a change older than one already written for the user within the reorder window, and accepts it after', () => {
    vi.useFakeTimers();
    const diffs = new Probe('dora', 'diffs');
    const legacy = new Probe('lee', 'updates');
    const f = fanout([diffs, legacy], { reorderWindowMs: 2_000 });
    // Instance B's batch (alice UP at 10) arrives before instance A's older one (alice DOWN at 9, bob UP at 8).
    f.deliver(batch([change('alice', 'UP', 10)], 2), 'gw-b');
    expect(updates(legacy.take())).toEqual([['presence_update', 'alice', 'UP', 1]]);
    diffs.take();
    vi.advanceTimersByTime(1_000);
    f.deliver(batch([change('alice', 'DOWN', 9), change('bob', 'UP', 8)], 1), 'gw-a');
    expect(updates(legacy.take())).toEqual([['presence_update', 'bob', 'UP', 2]]);
    // The diff carries the count of the latest batch by version, not of the late one.
    expect(diffs.take().map((e) => [e.data.joins, e.data.leaves, e.data.count])).toEqual([[[{ userId: 'bob', meta: {}, since: 1_008, availability: 'online' }], [], 2]]);
    // A late batch with only stale changes writes nothing.
    f.deliver(batch([change('alice', 'DOWN', 7)], 1), 'gw-a');
    expect(legacy.take()).toEqual([]);
    expect(diffs.take()).toEqual([]);
    // Past the window the versions may have started again (the group emptied): a lower version is taken.
    vi.advanceTimersByTime(2_001);
    f.deliver(batch([change('alice', 'DOWN', 2)], 1), 'gw-a');
    expect(updates(legacy.take())).toEqual([['presence_update', 'alice', 'DOWN', 3]]);
    expect(diffs.take().map((e) => [e.data.leaves, e.data.count])).toEqual([[['alice'], 1]]);
  });

  it('writes to the sessions of the batch’s group only, and nothing when this instance has none', () => {
    const member = new Probe('member', 'diffs');
    const f = fanout([member]);
    f.deliver({ group: 'elsewhere', changes: [change('alice', 'UP', 1)], count: 1, version: 1 }, 'gw-a');
    expect(member.take()).toEqual([]);
    f.deliver(batch([change('alice', 'UP', 1)], 1), 'gw-a');
    expect(member.take()).toHaveLength(1);
  });
});
