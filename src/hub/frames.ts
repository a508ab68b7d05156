// Pre-framed text messages, written to sockets as-is. Server frames are unmasked (RFC 6455 §5.1), so a frame is
// exactly header + payload. A fan-out frames an unsequenced envelope once for every recipient; a sequenced one is
// framed per recipient in one allocation from the body shared by the fan-out and the recipient's `,"seq":N}`.

const FIN_TEXT = 0x81;

/** Allocates a final text frame for `length` payload bytes with its header written; the payload is its last `length` bytes. */
function allocTextFrame(length: number): Buffer {
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = FIN_TEXT;
  if (header === 2) frame[1] = length;
  else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  return frame;
}

/**
 * `text` as UTF-8 in an exactly-sized allocation of its own, for bytes that are kept (replay buffers): a pooled
 * slice, as Buffer.from makes for short strings, would pin the pool's whole 8 KiB slab for as long as it is kept.
 */
export function keptUtf8(text: string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
  bytes.write(text);
  return bytes;
}

/** One complete text frame holding `payload` (UTF-8 JSON). */
export function textFrame(payload: string): Buffer {
  const length = Buffer.byteLength(payload);
  const frame = allocTextFrame(length);
  frame.write(payload, frame.length - length);
  return frame;
}

const SEQ_FIELD = Buffer.from(',"seq":', 'latin1');
const CLOSE_BRACE = 0x7d;
const DIGIT_0 = 0x30;

function digitCount(n: number): number {
  let digits = 1;
  for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  return digits;
}

/**
 * One complete text frame holding `body` followed by `,"seq":<seq>}`. The hot path of every sequenced fan-out: one
 * allocation, the digits written in place (no string, no call into the encoder). `seq` is a non-negative integer.
 */
export function sequencedTextFrame(body: Buffer, seq: number): Buffer {
  const digits = digitCount(seq);
  const length = body.length + SEQ_FIELD.length + digits + 1;
  const frame = allocTextFrame(length);
  const offset = frame.length - length;
  frame.set(body, offset);
  frame.set(SEQ_FIELD, offset + body.length);
  const last = frame.length - 2;
  let rest = seq;
  for (let at = last; at > last - digits; at--) {
    frame[at] = DIGIT_0 + (rest % 10);
    rest = Math.floor(rest / 10);
  }
  frame[frame.length - 1] = CLOSE_BRACE;
  return frame;
}
