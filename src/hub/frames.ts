// Pre-framed text messages: the WebSocket frame of a sequenced envelope is built in one allocation per recipient
// from the body shared by the whole fan-out and the recipient's own `,"seq":N}` tail, and written as-is.
// Server frames are unmasked (RFC 6455 §5.1), so the bytes are exactly header + payload.

const FIN_TEXT = 0x81;

/** One complete, unmasked, final text frame holding `body` followed by `,"seq":<seq>}`. */
export function sequencedTextFrame(body: Buffer, seq: number): Buffer {
  const tail = `,"seq":${seq}}`;
  const length = body.length + tail.length;
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
  body.copy(frame, header);
  frame.write(tail, header + body.length, 'latin1');
  return frame;
}
