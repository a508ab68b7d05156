// ChannelCut: the per-channel cut of a handoff (a Redis Cluster), each side on its own against the marks it reads, and
// both sides together over one simulated order per channel: every delivery numbered exactly once, by one side.
import { describe, expect, it } from 'vitest';
import { ChannelCapture, OwnerCut } from './ChannelCut';
import { Session } from './Session';

const OWNER = 'owner-instance';
const SELF = 'claimer-instance';
const [A, B] = ['rt:group:a', 'rt:user:alice'];
const body = (text: string) => Buffer.from(text);
const texts = (bodies: Buffer[]) => bodies.map(String);

describe('OwnerCut', () => {
  it('numbers what was read before its mark came back and what it sent before publishing it; holds the rest, then numbers it after', async () => {
    const session = new Session('alice', 'client', [], {}, 0, null, { bufferMessages: 100, bufferBytes: 100_000 });
    const cut = new OwnerCut(OWNER, [A, B]);
    session.startCut(cut);
    cut.published(A);
    session.deliver(body('{"n":"third on a, before the mark"'), 'third', A);
    session.deliver(body('{"n":"own on a, after publishing"'), OWNER, A);
    session.deliver(body('{"n":"own on b, before publishing"'), OWNER, B);
    cut.published(B);
    cut.marked(A, SELF); // another instance's mark of the same id: not the owner's
    cut.marked(A, OWNER);
    session.deliver(body('{"n":"third on a, after the mark"'), 'third', A);
    session.deliver(body('{"n":"backend on b, before the mark"'), 'backend', B);
    const settled = cut.settled(1_000);
    cut.marked(B, OWNER);
    expect(await settled).toBe(true);
    expect(session.replayAfter(0).map((e) => String(e.body))).toEqual(['{"n":"third on a, before the mark"', '{"n":"own on b, before publishing"', '{"n":"backend on b, before the mark"']);
    expect(session.seq).toBe(3);
    session.endCut();
    expect(session.replayAfter(3).map((e) => String(e.body))).toEqual(['{"n":"own on a, after publishing"', '{"n":"third on a, after the mark"']);
    // The cut is over: the next delivery is numbered at once.
    session.deliver(body('{"n":"later"'), 'third', A);
    expect(session.seq).toBe(6);
  });

  it('settles false when a mark does not come back in time (lost in a failover)', async () => {
    const cut = new OwnerCut(OWNER, [A, B]);
    cut.marked(A, OWNER);
    expect(await cut.settled(20)).toBe(false);
  });
});

describe('ChannelCapture', () => {
  it("keeps what follows the owner's mark on each channel; its own deliveries by their echo until its own mark, as made after", async () => {
    const marked: string[] = [];
    const capture = new ChannelCapture(OWNER, SELF, [A, B], (channel) => marked.push(channel));
    capture.offer(body('third on a, before the owner mark'), 'third', A);
    capture.offer(body('owner on a, before its mark'), OWNER, A);
    capture.offer(body('own on a, made before the cut'), SELF, A);
    capture.echo(body('echo on a, before the owner mark'), A);
    capture.channelMarked(A, 'third'); // a mark of the same id from another instance: ignored
    capture.channelMarked(A, OWNER);
    expect(marked).toEqual([A]);
    capture.offer(body('third on a, after the owner mark'), 'third', A);
    capture.echo(body('echo on a, between the marks'), A);
    capture.offer(body('own on a, made after its mark went out'), SELF, A);
    capture.channelMarked(A, SELF);
    capture.echo(body('echo on a, after its own mark'), A);
    capture.offer(body('owner on b, before its mark'), OWNER, B);
    capture.channelMarked(B, OWNER);
    capture.offer(body('owner on b, after its mark'), OWNER, B);
    capture.answered();
    expect(await capture.settled(20)).toBe(false);
    const settled = capture.settled(1_000);
    capture.channelMarked(B, SELF);
    expect(await settled).toBe(true);
    expect(marked).toEqual([A, B]);
    expect(texts(capture.take())).toEqual(['third on a, after the owner mark', 'echo on a, between the marks', 'own on a, made after its mark went out', 'owner on b, after its mark']);
  });

  it('keeps its own deliveries made while its mark is out after the echoes of earlier ones still on their way', () => {
    const capture = new ChannelCapture(OWNER, SELF, [A], () => undefined);
    capture.offer(body('own 1, made before the cut'), SELF, A);
    capture.offer(body('own 2, made before the cut'), SELF, A);
    capture.channelMarked(A, OWNER);
    capture.offer(body('own 3, made after its mark went out'), SELF, A);
    capture.echo(body('own 1, made before the cut'), A);
    capture.echo(body('own 2, made before the cut'), A);
    capture.channelMarked(A, SELF);
    capture.offer(body('own 4, made after its mark came back'), SELF, A);
    expect(texts(capture.take())).toEqual(['own 1, made before the cut', 'own 2, made before the cut', 'own 3, made after its mark went out', 'own 4, made after its mark came back']);
  });

  it('is not complete without the state, whatever marks came', async () => {
    const capture = new ChannelCapture(OWNER, SELF, [A], () => undefined);
    capture.channelMarked(A, OWNER);
    capture.channelMarked(A, SELF);
    expect(await capture.settled(20)).toBe(false);
  });
});

describe('both sides over one order per channel', () => {
  it('every delivery is numbered once, by the owner or by the claimer, whoever sent it and wherever it falls', () => {
    // One channel's order as its shard gives it to both instances: each entry is a publish (by the owner, the claimer
    // or a third party) or a mark. Local deliveries happen as the publish is made; the others as the order is read.
    const owner = new Session('alice', 'client', [], {}, 0, null, { bufferMessages: 1000, bufferBytes: 1_000_000 });
    const cut = new OwnerCut(OWNER, [A]);
    owner.startCut(cut);
    const order: { from: string; text: string | null }[] = [];
    const claimerPublishes: string[] = [];
    const capture = new ChannelCapture(OWNER, SELF, [A], () => order.push({ from: SELF, text: null }));
    const publish = (from: string, text: string) => {
      order.push({ from, text });
      // The publisher's own session gets it at once; the claimer's own only through its capture.
      if (from === OWNER) owner.deliver(body(text), OWNER, A);
      if (from === SELF) {
        capture.offer(body(text), SELF, A);
        claimerPublishes.push(text);
      }
    };
    let read = 0;
    /** Both instances read the order up to its end (each reads in the same order; here one after the other). */
    const readAll = () => {
      for (; read < order.length; read++) {
        const { from, text } = order[read]!;
        if (text === null) {
          if (from === OWNER) cut.marked(A, OWNER);
          capture.channelMarked(A, from);
          continue;
        }
        if (from !== OWNER) owner.deliver(body(text), from, A);
        if (from === SELF) capture.echo(body(text), A);
        else capture.offer(body(text), from, A);
      }
    };
    publish('third', 't1');
    publish(SELF, 'c1');
    publish(OWNER, 'o1');
    // The owner reads commit and marks the channel; before anyone reads the mark, more is published.
    cut.published(A);
    order.push({ from: OWNER, text: null });
    publish(OWNER, 'o2');
    publish(SELF, 'c2');
    publish('third', 't2');
    readAll();
    publish(SELF, 'c3');
    publish('third', 't3');
    readAll();
    const numberedByOwner = owner.replayAfter(0).map((e) => String(e.body));
    const keptByClaimer = texts(capture.take());
    expect([...numberedByOwner, ...keptByClaimer].sort()).toEqual(['c1', 'c2', 'c3', 'o1', 'o2', 't1', 't2', 't3']);
    expect(numberedByOwner).toEqual(['o1', 't1', 'c1']);
    expect(claimerPublishes).toEqual(['c1', 'c2', 'c3']);
  });

  it('over many random interleavings of publishes and reads on each side: every delivery once, each publisher in order', () => {
    // A small seeded generator (mulberry32), so that a failing interleaving can be run again.
    const random = (seed: number) => () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    for (let seed = 1; seed <= 500; seed++) {
      const next = random(seed);
      const owner = new Session('alice', 'client', [], {}, 0, null, { bufferMessages: 1000, bufferBytes: 1_000_000 });
      const cut = new OwnerCut(OWNER, [A]);
      owner.startCut(cut);
      const order: { from: string; text: string | null }[] = [];
      const capture = new ChannelCapture(OWNER, SELF, [A], () => order.push({ from: SELF, text: null }));
      const sent = new Map<string, string[]>([[OWNER, []], [SELF, []], ['third', []]]);
      const publish = (from: string) => {
        const text = `${from}#${sent.get(from)!.length}`;
        sent.get(from)!.push(text);
        order.push({ from, text });
        if (from === OWNER) owner.deliver(body(text), OWNER, A);
        if (from === SELF) capture.offer(body(text), SELF, A);
      };
      let [ownerRead, claimerRead, ownerMarked] = [0, 0, false];
      const ownerStep = () => {
        const { from, text } = order[ownerRead++]!;
        if (text === null) cut.marked(A, from);
        else if (from !== OWNER) owner.deliver(body(text), from, A);
      };
      const claimerStep = () => {
        const { from, text } = order[claimerRead++]!;
        if (text === null) capture.channelMarked(A, from);
        else if (from === SELF) capture.echo(body(text), A);
        else capture.offer(body(text), from, A);
      };
      for (let step = 0; step < 60; step++) {
        const roll = next();
        if (!ownerMarked && roll < 0.05) {
          ownerMarked = true;
          cut.published(A);
          order.push({ from: OWNER, text: null });
        } else if (roll < 0.5) publish([OWNER, SELF, 'third'][Math.floor(next() * 3)]!);
        else if (roll < 0.75 && ownerRead < order.length) ownerStep();
        else if (claimerRead < order.length) claimerStep();
      }
      if (!ownerMarked) {
        cut.published(A);
        order.push({ from: OWNER, text: null });
      }
      while (ownerRead < order.length || claimerRead < order.length) {
        if (ownerRead < order.length && (claimerRead >= order.length || next() < 0.5)) ownerStep();
        else claimerStep();
      }
      const numbered = [...owner.replayAfter(0).map((e) => String(e.body)), ...texts(capture.take())];
      for (const [from, texts] of sent) {
        expect(numbered.filter((t) => t.startsWith(`${from}#`)), `seed ${seed}: ${from} once, in order`).toEqual(texts);
      }
      expect(numbered, `seed ${seed}: nothing else`).toHaveLength([...sent.values()].flat().length);
    }
  });
});
