// Questions: an answer settles its question only when it comes from the instance asked; a gone instance settles it at
// once with the fallback, a silent one when the timeout passes (and only then is onSilence called).
import { describe, expect, it } from 'vitest';
import { MemoryBroker, MemoryBus } from '../broker/MemoryBroker';
import { Questions } from './Questions';

/** Brokers on one bus; each listening one hands what it receives to `heard` with the sender. */
async function brokers(ids: string[], listening: string[]): Promise<{ broker: Record<string, MemoryBroker>; heard: { to: string; from: string; id: string }[] }> {
  const bus = new MemoryBus();
  const heard: { to: string; from: string; id: string }[] = [];
  const broker: Record<string, MemoryBroker> = {};
  for (const id of ids) {
    broker[id] = new MemoryBroker(id, bus);
    await broker[id].start({ onRelayed: () => undefined });
    if (listening.includes(id)) await broker[id].listenControl({ onControl: (raw, from) => heard.push({ to: id, from, id: (JSON.parse(raw) as { id: string }).id }) });
  }
  return { broker, heard };
}

describe('Questions', () => {
  it('resolves with the answer from the instance asked; an answer to the same id from another instance is ignored', async () => {
    const { broker, heard } = await brokers(['a', 'b'], ['a', 'b']);
    const questions = new Questions<string>(broker.a!, 60_000);
    const asked = questions.ask('b', (id) => ({ op: 'q', id }), 'fallback');
    expect(heard).toEqual([{ to: 'b', from: 'a', id: expect.any(String) }]);
    const id = heard[0]!.id;
    questions.answer(id, 'c', 'from c');
    questions.answer('another', 'b', 'another question');
    questions.answer(id, 'b', 'from b');
    questions.answer(id, 'b', 'twice');
    expect(await asked).toBe('from b');
  });

  it('settles at once with the fallback when nobody listens for the instance asked, without calling onSilence', async () => {
    const { broker } = await brokers(['a', 'b'], ['a']);
    const silences: string[] = [];
    const questions = new Questions<string>(broker.a!, 60_000);
    expect(await questions.ask('b', (id) => ({ op: 'q', id }), 'gone', () => silences.push('b'))).toBe('gone');
    expect(await questions.ask('nobody', (id) => ({ op: 'q', id }), 'gone', () => silences.push('nobody'))).toBe('gone');
    expect(silences).toEqual([]);
  });

  it('settles with the fallback after the timeout when the instance asked listens but does not answer; a late answer changes nothing', async () => {
    const { broker, heard } = await brokers(['a', 'b'], ['a', 'b']);
    const silences: string[] = [];
    const questions = new Questions<string>(broker.a!, 50);
    const started = Date.now();
    expect(await questions.ask('b', (id) => ({ op: 'q', id }), 'silent', () => silences.push('b'))).toBe('silent');
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(silences).toEqual(['b']);
    const next = questions.ask('b', (id) => ({ op: 'q', id }), 'silent');
    // The late answer comes while the next question waits: it must not settle that one.
    questions.answer(heard[0]!.id, 'b', 'late');
    questions.answer(heard[1]!.id, 'b', 'on time');
    expect(await next).toBe('on time');
  });
});
