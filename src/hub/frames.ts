// Pre-framed text messages, written to sockets as-is. Server frames are unmasked (RFC 6455 §5.1), so a frame is
// exactly header + payload. A fan-out frames an unsequenced envelope once for every recipient; a sequenced one is
// framed per recipient from the body shared by the fan-out and the recipient's `,"seq":N}`, in a buffer reused from
// one recipient to the next (`SequencedFramer`).

const FIN_TEXT = 0x81;

const headerLength = (length: number) => (length < 126 ? 2 : length < 65_536 ? 4 : 10);

/** Allocates a final text frame for `length` payload bytes with its header written; the payload is its last `length` bytes. */
function allocTextFrame(length: number): Buffer {
  return writeHeader(Buffer.allocUnsafe(headerLength(length) + length), length);
}

/** Writes the header of a final text frame of `length` payload bytes at the start of `frame`, sized for it. */
function writeHeader(frame: Buffer, length: number): Buffer {
  const header = frame.length - length;
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

const payloadLength = (body: Buffer, digits: number) => body.length + SEQ_FIELD.length + digits + 1;
const sequencedSize = (body: Buffer, digits: number) => headerLength(payloadLength(body, digits)) + payloadLength(body, digits);

/** Lays out the frame of `body` + `,"seq":` + room for `digits` digits + `}` in `frame`, which has exactly its size. */
function layOut(frame: Buffer, body: Buffer, digits: number): Buffer {
  const size = frame.length;
  const offset = size - payloadLength(body, digits);
  writeHeader(frame, size - offset);
  frame.set(body, offset);
  frame.set(SEQ_FIELD, offset + body.length);
  frame[size - 1] = CLOSE_BRACE;
  return frame;
}

/** Writes `seq`'s `digits` digits in place, just before the frame's closing brace (no string, no call into the encoder). */
function writeSeq(frame: Buffer, seq: number, digits: number): void {
  const last = frame.length - 2;
  let rest = seq;
  for (let at = last; at > last - digits; at--) {
    frame[at] = DIGIT_0 + (rest % 10);
    rest = Math.floor(rest / 10);
  }
}

/** One complete text frame holding `body` followed by `,"seq":<seq>}`, in one allocation. `seq` is a non-negative integer. */
export function sequencedTextFrame(body: Buffer, seq: number): Buffer {
  const digits = digitCount(seq);
  const frame = layOut(Buffer.allocUnsafe(sequencedSize(body, digits)), body, digits);
  writeSeq(frame, seq, digits);
  return frame;
}

/**
 * The hot path of every sequenced fan-out: the frames of its recipients, one after the other, in one buffer. The
 * header and the shared body are copied when the body changes (once per fan-out) or the seq's number of digits does;
 * for each recipient only its digits are written. A frame stays valid until the next call of `frame`: a socket that
 * could not write it at once and holds on to it is given those bytes for good with `keep()`, and the next frame gets
 * a buffer of its own.
 */
export class SequencedFramer {
  private scratch: Buffer | null = null;
  /** The frame laid out in `scratch` for `body` and seqs of `digits` digits. */
  private frameOf: { body: Buffer; digits: number; frame: Buffer } | null = null;

  frame(body: Buffer, seq: number): Buffer {
    const digits = digitCount(seq);
    let laid = this.frameOf;
    if (!laid || laid.body !== body || laid.digits !== digits) {
      const size = sequencedSize(body, digits);
      if (!this.scratch || this.scratch.length < size) this.scratch = Buffer.allocUnsafe(size);
      laid = this.frameOf = { body, digits, frame: layOut(this.scratch.subarray(0, size), body, digits) };
    }
    writeSeq(laid.frame, seq, digits);
    return laid.frame;
  }

  /** The last frame now belongs to whoever holds it: it is never written again. */
  keep(): void {
    this.scratch = null;
    this.frameOf = null;
  }
}
