// Pre-framed text messages, written to sockets as-is. Server frames are unmasked (RFC 6455 §5.1), so a frame is
// exactly header + payload. A fan-out frames an unsequenced envelope once for every recipient; a sequenced one is
// framed per recipient in one allocation from the body shared by the fan-out and the recipient's `,"seq":N}`.

const FIN_TEXT = 0x81;

/** Allocates a final text frame for `length` payload bytes with its header written; returns it and the payload offset. */
function allocTextFrame(length: number): { frame: Buffer; offset: number } {
  const offset = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(offset + length);
  frame[0] = FIN_TEXT;
  if (offset === 2) frame[1] = length;
  else if (offset === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  return { frame, offset };
}

/** One complete text frame holding `payload` (UTF-8 JSON). */
export function textFrame(payload: string): Buffer {
  const { frame, offset } = allocTextFrame(Buffer.byteLength(payload));
  frame.write(payload, offset);
  return frame;
}

/** One complete text frame holding `body` followed by `,"seq":<seq>}`. */
export function sequencedTextFrame(body: Buffer, seq: number): Buffer {
  const tail = `,"seq":${seq}}`;
  const { frame, offset } = allocTextFrame(body.length + tail.length);
  body.copy(frame, offset);
  frame.write(tail, offset + body.length, 'latin1');
  return frame;
}
