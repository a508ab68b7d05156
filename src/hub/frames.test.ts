import { describe, expect, it } from 'vitest';
import * as ws from 'ws';
import { keptUtf8, SequencedFramer, sequencedTextFrame, textFrame } from './frames';

interface ReceiverLike {
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): void;
  write(chunk: Buffer): void;
}
// ws's frame parser, exported at runtime though not in its type declarations.
const { Receiver } = ws as unknown as { Receiver: new (options: { isServer: boolean }) => ReceiverLike };

/** Parses frames with ws's own receiver, as a client would. */
function parse(frame: Buffer): string[] {
  const messages: string[] = [];
  const receiver = new Receiver({ isServer: false });
  receiver.on('message', (data: Buffer, isBinary: boolean) => {
    expect(isBinary).toBe(false);
    messages.push(String(data));
  });
  receiver.write(frame);
  return messages;
}

describe('textFrame', () => {
  it('builds valid text frames for every length class, multi-byte text included', () => {
    for (const size of [1, 125, 200, 70_000]) {
      const payload = `{"type":"signal","data":"${'é'.repeat(size)}"}`;
      expect(parse(textFrame(payload))).toEqual([payload]);
    }
  });
});

describe('sequencedTextFrame', () => {
  it('builds valid text frames for every length class', () => {
    for (const size of [1, 100, 125, 200, 70_000]) {
      const body = Buffer.from(`{"type":"data_update","data":"${'x'.repeat(size)}"`);
      expect(parse(sequencedTextFrame(body, 12345))).toEqual([`${String(body)},"seq":12345}`]);
    }
  });

  it('writes every seq exactly as JSON would', () => {
    const body = Buffer.from('{"type":"data_update"');
    for (const seq of [0, 1, 9, 10, 99, 100, 65_535, 1_000_000, 2 ** 31, Number.MAX_SAFE_INTEGER]) {
      const [text] = parse(sequencedTextFrame(body, seq));
      expect(JSON.parse(text!)).toEqual({ type: 'data_update', seq });
    }
  });
});

describe('SequencedFramer', () => {
  it('frames recipient after recipient exactly as sequencedTextFrame, across seqs, digit counts and bodies', () => {
    const framer = new SequencedFramer();
    const short = Buffer.from('{"type":"data_update","data":"a"');
    const long = Buffer.from(`{"type":"data_update","data":"${'é'.repeat(100)}"`);
    for (const [body, seq] of [[short, 7], [short, 8], [short, 10], [short, 9], [long, 123], [long, 99_999], [short, 1], [long, 1_000_000]] as const) {
      expect(framer.frame(body, seq).equals(sequencedTextFrame(body, seq))).toBe(true);
    }
  });

  it('never writes again over a frame it was told a socket keeps', () => {
    const framer = new SequencedFramer();
    const body = Buffer.from('{"type":"data_update","data":"a"');
    const kept = framer.frame(body, 41);
    const copy = Buffer.from(kept);
    framer.keep();
    framer.frame(body, 42);
    framer.frame(Buffer.from('{"type":"data_update","data":"b"'), 43);
    expect(kept.equals(copy)).toBe(true);
    expect(parse(kept)).toEqual(['{"type":"data_update","data":"a","seq":41}']);
  });

  it('reuses its bytes for the next recipient when no socket keeps them', () => {
    const framer = new SequencedFramer();
    const body = Buffer.from('{"type":"data_update","data":"a"');
    const first = framer.frame(body, 41);
    expect(framer.frame(body, 42)).toBe(first);
    expect(parse(first)).toEqual(['{"type":"data_update","data":"a","seq":42}']);
  });
});

describe('keptUtf8', () => {
  it('owns exactly its bytes, never a slice of the shared pool', () => {
    const kept = keptUtf8('{"type":"data_update","data":"é"');
    expect(String(kept)).toBe('{"type":"data_update","data":"é"');
    expect(kept.byteOffset).toBe(0);
    expect(kept.buffer.byteLength).toBe(kept.length);
  });
});
