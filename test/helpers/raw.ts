// Raw TCP access for hostile tests: hand-written HTTP requests and hand-built (masked) WebSocket frames.
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { expect } from 'vitest';
import type { TestGateway } from './gateway';

/** Sends `request` as-is and resolves with everything the server wrote before closing (or after `waitMs`). */
export function rawExchange(port: number, request: string | Buffer, waitMs = 1000): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let out = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(out);
    };
    const timer = setTimeout(done, waitMs);
    socket.on('data', (d) => (out += d.toString('latin1')));
    socket.on('close', done);
    socket.on('error', done);
    socket.write(request);
  });
}

export function upgradeRequest(headers: Record<string, string> = {}): string {
  const all: Record<string, string> = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    'Sec-WebSocket-Version': '13',
    ...headers,
  };
  return `GET /rt HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
}

/** A client frame (always masked, as RFC 6455 requires of clients). */
export function clientFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const mask = randomBytes(4);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | len]) : Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, len >> 8, len & 0xff]);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([head, mask, body]);
}

/** Opens a raw socket and completes the WebSocket handshake on it. */
export function rawWebSocket(port: number): Promise<{ socket: Socket; received: () => Buffer; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('error', () => undefined);
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded && buf.includes('\r\n\r\n')) {
        upgraded = true;
        if (!buf.toString('latin1').startsWith('HTTP/1.1 101')) return reject(new Error(buf.toString('latin1')));
        buf = buf.subarray(buf.indexOf('\r\n\r\n') + 4);
        resolve({ socket, received: () => buf, closed });
      }
    });
    socket.write(upgradeRequest());
  });
}

/** Two well-behaved clients in group "calm"; `check()` proves fan-out between them still works. */
export async function bystanders(gw: TestGateway) {
  const sender = await gw.join('calm-sender', ['calm']);
  const receiver = await gw.join('calm-receiver', ['calm']);
  let n = 0;
  return {
    async check() {
      const payload = { n: ++n };
      sender.send('data_update', { group: 'calm', payload });
      expect((await receiver.next('data_update')).data!.payload).toEqual(payload);
    },
  };
}
