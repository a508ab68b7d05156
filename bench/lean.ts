// A lean WebSocket client for load generation: raw TCP, hand-rolled framing, frames handed over as bytes (whether they
// are parsed is the caller's choice), so one process can hold thousands of subscribers. Answers pings and close frames
// as browsers do.
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export type FrameHandler = (opcode: number, fin: boolean, data: Buffer, start: number, end: number) => void;

export class LeanSocket {
  private pending: Buffer | null = null;
  private readonly mask = randomBytes(4);
  onFrame: FrameHandler = () => undefined;
  onClose: () => void = () => undefined;
  closed = false;
  /** Bytes received since the handshake. */
  bytesReceived = 0;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('close', () => {
      this.closed = true;
      this.onClose();
    });
    socket.on('error', () => undefined);
  }

  static open(port: number, path = '/rt', localAddress?: string): Promise<LeanSocket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: '127.0.0.1', localAddress });
      const key = randomBytes(16).toString('base64');
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        if (!head.subarray(0, 12).toString().includes('101')) {
          socket.destroy();
          return reject(new Error(head.subarray(0, end).toString()));
        }
        const lean = new LeanSocket(socket);
        socket.on('data', (d: Buffer) => lean.receive(d));
        resolve(lean);
        // Frames that came with the handshake's response (Engine.IO's open packet, the gateway's hello) go to the
        // handler the caller sets once it has the socket, before the next read.
        const rest = head.subarray(end + 4);
        if (rest.length > 0) setImmediate(() => lean.receive(rest));
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
  }

  sendText(text: string): void {
    this.write(0x1, Buffer.from(text));
  }

  close(): void {
    this.socket.destroy();
  }

  private write(opcode: number, payload: Buffer): void {
    const len = payload.length;
    const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff]);
    const masked = Buffer.allocUnsafe(len);
    for (let i = 0; i < len; i++) masked[i] = payload[i]! ^ this.mask[i & 3]!;
    this.socket.write(Buffer.concat([head, this.mask, masked]));
  }

  private receive(chunk: Buffer): void {
    this.bytesReceived += chunk.length;
    const data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    let off = 0;
    while (data.length - off >= 2) {
      const b0 = data[off]!;
      let len = data[off + 1]! & 0x7f;
      let header = 2;
      if (len === 126) {
        if (data.length - off < 4) break;
        len = data.readUInt16BE(off + 2);
        header = 4;
      } else if (len === 127) {
        if (data.length - off < 10) break;
        len = Number(data.readBigUInt64BE(off + 2));
        header = 10;
      }
      if (data.length - off < header + len) break;
      const opcode = b0 & 0x0f;
      const start = off + header;
      if (opcode === 0x9) this.write(0xa, data.subarray(start, start + len));
      else this.onFrame(opcode, (b0 & 0x80) !== 0, data, start, start + len);
      if (opcode === 0x8 && !this.closed) {
        // The close handshake: echo the status, then end the TCP connection.
        this.write(0x8, data.subarray(start, start + Math.min(len, 2)));
        this.socket.end();
      }
      off = start + len;
    }
    this.pending = off < data.length ? data.subarray(off) : null;
  }
}
