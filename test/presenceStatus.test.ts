// Presence status set by clients (issue 15), on one real gateway: the `presence` envelope (ack, meta replaced, refusals),
// one rule across a user's tabs (the most available wins, invisible hides), one UPDATE per change of how the user
// shows, invisible users DOWN and out of member lists, `identify.availability`, and a resume that keeps it. Absence is
// asserted behind a sentinel user whose UP comes after what is checked.
import { describe, expect, it } from 'vitest';
import { startTestGateway } from './helpers/gateway';
import type { ProbeClient, ServerEnvelope } from './helpers/ProbeClient';
import { API_ENV, apiClient } from './helpers/api';
import { diffedBefore, diffsThrough, heardBefore, member, updatesBefore, type MemberList, type Seen } from './helpers/presence';

const listed = async (c: ProbeClient, group: string) => ((await c.request('members', { group })).data as unknown as MemberList);

describe('presence status', () => {
  it('sets a connection’s availability and meta: ack, one UPDATE to members in either mode, the member list showing it', async () => {
    const gw = await startTestGateway();
    const { client: legacy } = await member(gw, 'legacy', ['g']);
    const { client: diffs } = await member(gw, 'diffs', ['g'], { presence: 'diffs' });
    const { client: alice } = await member(gw, 'alice', ['g', 'h'], { meta: { device: 'web' } });
    await member(gw, 's0', ['g']);
    await heardBefore(legacy, 's0', 'alice');
    await diffsThrough(diffs, 's0');

    const ack = await alice.request('presence', { availability: 'idle' });
    expect(ack).toMatchObject({ type: 'ack', data: {} });
    const reply = await alice.request('presence', { availability: 'dnd', meta: { device: 'web', status: 'In a meeting' } });
    expect(reply.type).toBe('ack');
    await member(gw, 's1', ['g']);
    // Each change, in its own batch or merged into one: the last one tells how she shows.
    const updates = await heardBefore(legacy, 's1', 'alice');
    expect(updates.length).toBeGreaterThanOrEqual(1);
    expect(updates.every(([, status]) => status === 'UPDATE')).toBe(true);
    expect(updates.at(-1)).toEqual(['alice', 'UPDATE', 'dnd']);
    expect((await diffedBefore(diffs, 's1', 'alice')).at(-1)).toEqual(['alice', 'UPDATE', 'dnd']);
    const entry = (await listed(diffs, 'g')).members.find((m) => m.userId === 'alice');
    expect(entry).toMatchObject({ availability: 'dnd', meta: { device: 'web', status: 'In a meeting' } });
    // Every group of hers shows it; a member joining later reads it in its ready.
    const { ready } = await member(gw, 'late', ['h']);
    expect(ready.groups[0]!.members.find((m) => m.userId === 'alice')).toMatchObject({ availability: 'dnd', meta: { status: 'In a meeting' } });

    // Without meta, the meta stays; without an id, no ack (the barrier's reply comes first).
    alice.send('presence', { availability: 'online' });
    expect((await alice.barrier()).filter((e) => e.type === 'ack')).toEqual([]);
    await member(gw, 's2', ['g']);
    expect(await heardBefore(legacy, 's2', 'alice')).toEqual([['alice', 'UPDATE', 'online']]);
    const after = (await listed(legacy, 'g')).members.find((m) => m.userId === 'alice');
    expect(after).toMatchObject({ availability: 'online', meta: { device: 'web', status: 'In a meeting' } });
    // The same again changes nothing.
    await alice.request('presence', { availability: 'online' });
    await member(gw, 's3', ['g']);
    expect(await heardBefore(legacy, 's3', 'alice')).toEqual([]);
  });

  it('shows a user with two tabs as the most available one: one UPDATE per change of it, never one per tab', async () => {
    const gw = await startTestGateway();
    const { client: legacy } = await member(gw, 'legacy', ['g']);
    const { client: diffs } = await member(gw, 'diffs', ['g'], { presence: 'diffs' });
    const { client: tab1 } = await member(gw, 'alice', ['g'], { meta: { device: 'web' } });
    const { client: tab2 } = await member(gw, 'alice', ['g'], { meta: { device: 'web' } });
    await member(gw, 's0', ['g']);
    expect(await heardBefore(legacy, 's0', 'alice')).toEqual([['alice', 'UP', 'online']]);
    expect(await diffedBefore(diffs, 's0', 'alice')).toEqual([['alice', 'UP', 'online']]);

    // Each step, then a sentinel: what members heard of it, in both modes.
    const steps: [ProbeClient, string, Seen[]][] = [
      [tab1, 'idle', []], // tab2 is still online
      [tab2, 'dnd', [['alice', 'UPDATE', 'idle']]], // now tab1's idle is the most available
      [tab2, 'online', [['alice', 'UPDATE', 'online']]],
      [tab2, 'invisible', [['alice', 'UPDATE', 'idle']]], // an invisible tab does not count
      [tab1, 'invisible', [['alice', 'DOWN', '']]], // every tab invisible: DOWN
      [tab1, 'invisible', []],
      [tab2, 'dnd', [['alice', 'UP', 'dnd']]],
    ];
    for (const [i, [tab, availability, expected]] of steps.entries()) {
      await tab.request('presence', { availability });
      await member(gw, `step-${i}`, ['g']);
      const legacyExpected = expected.map(([u, status, a]): Seen => [u, status, status === 'DOWN' ? expect.any(String) : a]);
      expect(await heardBefore(legacy, `step-${i}`, 'alice'), `step ${i}: ${availability}`).toEqual(legacyExpected);
      expect(await diffedBefore(diffs, `step-${i}`, 'alice'), `step ${i}: ${availability}`).toEqual(expected);
    }
  });

  it('keeps an invisible user out of member lists and counts, and DOWN to others, while connected', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    const { client: legacy } = await member(gw, 'legacy', ['g']);
    const { client: ghost, ready: ghostReady } = await member(gw, 'ghost', ['g'], { availability: 'invisible' });
    const { client: alice } = await member(gw, 'alice', ['g']);
    await member(gw, 's0', ['g']);
    // The invisible identify never showed; alice did.
    expect((await updatesBefore(legacy, 's0')).filter(([u]) => u === 'ghost' || u === 'alice')).toEqual([['alice', 'UP']]);
    const page = await listed(legacy, 'g');
    expect(page.members.map((m) => m.userId)).not.toContain('ghost');
    expect(page.count).toBe(3);
    // The invisible user sees the others, but not herself.
    expect(ghostReady.groups[0]!.members.map((m) => m.userId)).toEqual(['legacy']);
    expect(await api.ok('presence_stats', { group: 'g' })).toEqual({ group: 'g', users: 3, sessions: 4 });
    expect(await api.ok('presence', { group: 'g' })).toMatchObject({ count: 3, members: [{ userId: 'legacy' }, { userId: 'alice' }, { userId: 's0' }] });
    expect(await api.ok('user', { user: 'ghost' })).toMatchObject({ sessions: [{ availability: 'invisible', state: 'attached' }] });

    // Visible: UP; invisible again: DOWN, though still connected and still getting the group's messages.
    await ghost.request('presence', { availability: 'online' });
    await member(gw, 's1', ['g']);
    expect((await updatesBefore(legacy, 's1')).filter(([u]) => u === 'ghost')).toEqual([['ghost', 'UP']]);
    await ghost.request('presence', { availability: 'invisible' });
    await member(gw, 's2', ['g']);
    expect((await updatesBefore(legacy, 's2')).filter(([u]) => u === 'ghost')).toEqual([['ghost', 'DOWN']]);
    expect((await listed(legacy, 'g')).members.map((m) => m.userId)).not.toContain('ghost');
    await alice.request('data_update', { group: 'g', payload: 'still here?' });
    expect((await ghost.next('data_update')).data!.payload).toBe('still here?');
    // Leaving while invisible announces nothing.
    await ghost.close();
    await gw.connections(5);
    await member(gw, 's3', ['g']);
    expect((await updatesBefore(legacy, 's3')).filter(([u]) => u === 'ghost')).toEqual([]);
  });

  it('keeps a session’s availability across a resume, announcing nothing', async () => {
    const gw = await startTestGateway();
    const { client: legacy } = await member(gw, 'legacy', ['g']);
    const { client: away, ready } = await member(gw, 'alice', ['g']);
    await away.request('presence', { availability: 'idle', meta: { note: 'brb' } });
    await member(gw, 's0', ['g']);
    await updatesBefore(legacy, 's0');
    away.socket.terminate();
    await gw.connections(2);
    const back = await gw.connect();
    const resumed = await back.request('identify', { token: await gw.token({ sub: 'alice', groups: ['g'] }), groups: ['g'], resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: 0 } });
    expect(resumed.data).toMatchObject({ resumed: true });
    await member(gw, 's1', ['g']);
    expect((await updatesBefore(legacy, 's1')).filter(([u]) => u === 'alice')).toEqual([]);
    expect((await listed(legacy, 'g')).members.find((m) => m.userId === 'alice')).toMatchObject({ availability: 'idle', meta: { note: 'brb' } });
  });

  it('refuses what is not a presence: INVALID_ENVELOPE, PAYLOAD_TOO_LARGE for meta over 1 KiB, NOT_IDENTIFIED before identify; the connection goes on', async () => {
    const gw = await startTestGateway();
    const early = await gw.connect();
    expect((await early.request('presence', { availability: 'idle' })).data).toMatchObject({ code: 'NOT_IDENTIFIED' });
    const { client: alice } = await member(gw, 'alice', ['g']);
    for (const data of [{}, { availability: 'away' }, { availability: 'IDLE' }, { availability: null }, { availability: 'idle', meta: 'x' }, { availability: 'idle', meta: [1] }]) {
      expect((await alice.request('presence', data)).data, JSON.stringify(data)).toMatchObject({ code: 'INVALID_ENVELOPE' });
    }
    expect(((await alice.request('presence', {})).data!.message as string)).toContain('availability is required');
    expect(((await alice.request('presence', { availability: 'away' })).data!.message as string)).toContain('availability must be online, idle, dnd or invisible');
    expect((await alice.request('presence', { availability: 'idle', meta: { big: 'x'.repeat(1100) } })).data).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    expect((await early.request('identify', { token: await gw.token({ sub: 'alice', groups: ['g'] }), availability: 'away' })).data).toMatchObject({ code: 'INVALID_ENVELOPE' });
    // Nothing of it took: she is still online with her meta, and still served.
    expect((await listed(alice, 'g')).members).toMatchObject([{ userId: 'alice', availability: 'online', meta: {} }]);
    expect((await alice.request('heartbeat', {})).type).toBe('heartbeat_ack');
  });

  it('rate-limits presence frames like any other', async () => {
    const gw = await startTestGateway({ GW_RATE_MSG_PER_10S: '5' });
    const { client: alice } = await member(gw, 'alice', ['g']);
    const replies: ServerEnvelope[] = [];
    for (let i = 0; i < 8; i++) replies.push(await alice.request('presence', { availability: i % 2 === 0 ? 'idle' : 'online' }));
    // The identify took one token of the five: four presences go through, the rest are refused (a token refilled on a
    // slow machine lets one more through).
    const answers = replies.map((r) => (r.type === 'error' ? r.data!.code : r.type));
    expect(answers.slice(0, 4)).toEqual(['ack', 'ack', 'ack', 'ack']);
    expect(answers.filter((a) => a === 'RATE_LIMITED').length).toBeGreaterThanOrEqual(3);
    expect(new Set(answers)).toEqual(new Set(['ack', 'RATE_LIMITED']));
  });
});
