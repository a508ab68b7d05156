// Questions: asking another instance by control message and awaiting its answer, matched by id and accepted only from
// the instance asked, within a timeout. An instance that is gone (nobody listens on its channel) settles the question
// at once and costs no timeout; one that stays silent settles it when the timeout passes. Either way the caller gets
// the fallback it named, never an exception.
import { randomBytes } from 'node:crypto';
import type { Broker } from '../broker/Broker';

export class Questions<A> {
  private readonly waiting = new Map<string, { from: string; answer(value: A): void }>();

  constructor(
    private readonly broker: Pick<Broker, 'sendControl'>,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Sends `message(id)` to instance `to`; resolves with its answer, or with `fallback` when `to` is gone or does not
   * answer in time (`onSilence` is then called, so the caller can log with what it knows).
   */
  ask(to: string, message: (id: string) => object, fallback: A, onSilence?: () => void): Promise<A> {
    return new Promise((resolve) => {
      const id = randomBytes(8).toString('hex');
      const finish = (value: A) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(value);
      };
      const timer = setTimeout(() => {
        onSilence?.();
        finish(fallback);
      }, this.timeoutMs);
      this.waiting.set(id, { from: to, answer: finish });
      void this.broker.sendControl(to, JSON.stringify(message(id))).then((heard) => {
        if (!heard) finish(fallback);
      });
    });
  }

  /** An answer to question `id` from instance `from`; ignored unless that question is waiting for that instance. */
  answer(id: string, from: string, value: A): void {
    const waiting = this.waiting.get(id);
    if (waiting?.from === from) waiting.answer(value);
  }
}
