// Hostile input: each case asserts its exact error or close code, and that well-behaved clients on the same gateway keep their fan-out.
import { describe, expect, it } from 'vitest';
import { startTestGateway } from './helpers/gateway';
import { bystanders, clientFrame, rawExchange, rawWebSocket, upgradeRequest } from './helpers/raw';

async function setup(env: Record<string, string> = {}) {
  const gw = await startTestGateway(env);
  const calm = await bystanders(gw);
  const attacker = await gw.join('mallory', ['g', '__proto__'], { grants: ['*'] });
  return { gw, calm, attacker };
}

describe('hostile input', () => {
  for (const frame of ['null', '[]', '[1,2]', '0', '-1e309', '"str"', 'true']) {
    it(`non-object JSON ${frame} → INVALID_ENVELOPE`, async () => {
      const { calm, attacker } = await setup();
      attacker.sendRaw(frame);
      expect((await attacker.next('error')).data!.code).toBe('INVALID_ENVELOPE');
      await calm.check();
    });
  }

  it('binary frame → INVALID_ENVELOPE', async () => {
    const { calm, attacker } = await setup();
    attacker.sendRaw(Buffer.from([0, 1, 2, 255]), true);
    expect((await attacker.next('error')).data!.code).toBe('INVALID_ENVELOPE');
    await calm.check();
  });

  it('deeply nested JSON (arrays and objects) → INVALID_ENVELOPE, the gateway does not overflow its stack', async () => {
    const { calm, attacker } = await setup();
    const deepArray = `{"type":"data_update","data":{"group":"g","payload":${'['.repeat(30000)}${']'.repeat(30000)}}}`;
    const deepObject = `{"type":"data_update","data":{"group":"g","payload":${'{"a":'.repeat(9000)}1${'}'.repeat(9000)}}}`;
    for (const frame of [deepArray, deepObject]) {
      attacker.sendRaw(frame);
      const error = await attacker.next('error');
      expect(error.data).toMatchObject({ code: 'INVALID_ENVELOPE', message: 'frame nests deeper than 64 levels' });
    }
    const ok = `{"type":"data_update","id":"d","data":{"group":"g","payload":${'['.repeat(60)}${']'.repeat(60)}}}`;
    attacker.sendRaw(ok);
    expect((await attacker.next('ack')).replyTo).toBe('d');
    await calm.check();
  });

  it('__proto__ and constructor keys are plain data: no prototype pollution, relayed as sent', async () => {
    const { gw, calm, attacker } = await setup();
    const evil = '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}}}';
    const watcher = await gw.join('watcher', ['__proto__'], { grants: ['*'] });
    const tab = await gw.connect();
    tab.sendRaw(`{"type":"identify","id":"i","data":{"token":"${await gw.token({ sub: '__proto__', groups: ['*'] })}","groups":["__proto__"],"meta":${evil}}}`);
    expect((await tab.next('ready')).data!.userId).toBe('__proto__');
    // mallory's UP may share the batch (the watcher's list was read while it was pending): wait for __proto__'s own.
    const up = await watcher.next((e) => e.type === 'presence_update' && e.data!.userId === '__proto__');
    expect(Object.keys(up.data!.meta as object)).toEqual(['__proto__', 'constructor']);
    attacker.sendRaw(`{"type":"data_update","data":{"group":"__proto__","payload":${evil}},"__proto__":{"polluted":"yes"}}`);
    const msg = await watcher.next('data_update');
    expect(Object.keys(msg.data!.payload as object)).toEqual(['__proto__', 'constructor']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.prototype as unknown as Record<string, unknown>).polluted).toBeUndefined();
    const sub = await watcher.request('subscribe', { group: 'constructor' });
    expect(sub.data!.members).toEqual([{ userId: 'watcher', meta: {}, since: expect.any(Number), availability: 'online' }]);
    await calm.check();
  });

  it('a huge string inside the frame limit is delivered intact', async () => {
    const { gw, calm, attacker } = await setup();
    const receiver = await gw.join('receiver', ['g']);
    const big = 'x'.repeat(60_000);
    attacker.send('data_update', { group: 'g', payload: big });
    expect((await receiver.next('data_update')).data!.payload).toBe(big);
    await calm.check();
  });

  it('wrong types in every field → INVALID_ENVELOPE naming the field', async () => {
    const { gw, calm, attacker } = await setup();
    const cases: [unknown, string][] = [
      [{ type: ['heartbeat'] }, 'type'],
      [{ type: 'heartbeat', id: { x: 1 } }, 'id'],
      [{ type: 'heartbeat', data: 5 }, 'data'],
      [{ type: 'subscribe', data: { group: { a: 1 } } }, 'data.group'],
      [{ type: 'unsubscribe', data: { group: null } }, 'data.group'],
      [{ type: 'data_update', data: { group: 'g', payload: 1, echo: 'yes' } }, 'data.echo'],
      [{ type: 'data_update', data: { group: 7, payload: 1 } }, 'data.group'],
    ];
    for (const [envelope, field] of cases) {
      attacker.sendRaw(JSON.stringify(envelope));
      const error = await attacker.next('error');
      expect(error.data!.code).toBe('INVALID_ENVELOPE');
      expect(error.data!.message).toContain(field);
    }
    const fresh = await gw.connect();
    for (const data of [{ token: 5 }, { token: 'x', groups: 'g' }, { token: 'x', groups: [5] }, { token: 'x', meta: 'm' }]) {
      expect((await fresh.request('identify', data)).data!.code).toBe('INVALID_ENVELOPE');
    }
    await calm.check();
  });

  it('invalid UTF-8 in a text frame → close 1007', async () => {
    const { calm, attacker } = await setup();
    attacker.socket.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect((await attacker.closed).code).toBe(1007);
    await calm.check();
  });

  it('a frame over GW_MAX_PAYLOAD_BYTES → close 1009', async () => {
    const { calm, attacker } = await setup({ GW_MAX_PAYLOAD_BYTES: '2048' });
    attacker.send('data_update', { group: 'g', payload: 'x'.repeat(3000) });
    expect((await attacker.closed).code).toBe(1009);
    await calm.check();
  });

  it('frames after the close frame are ignored', async () => {
    const { gw, calm } = await setup();
    const raw = await rawWebSocket(gw.gateway.port);
    const close = Buffer.from([0x03, 0xe8]);
    raw.socket.write(Buffer.concat([clientFrame(0x8, close), clientFrame(0x1, Buffer.from('{"type":"heartbeat","id":"late"}'))]));
    await raw.closed;
    // Everything the gateway wrote came before the socket closed.
    expect(raw.received().toString('latin1')).not.toContain('late');
    await calm.check();
    await gw.connections(3);
  });

  it('an upgrade with a bad Sec-WebSocket-Key → 400', async () => {
    const { gw, calm } = await setup();
    const res = await rawExchange(gw.gateway.port, upgradeRequest({ 'Sec-WebSocket-Key': 'not-a-key' }));
    expect(res).toMatch(/^HTTP\/1\.1 400/);
    await calm.check();
  });

  it('an upgrade with an unsupported Sec-WebSocket-Version → 400', async () => {
    const { gw, calm } = await setup();
    const res = await rawExchange(gw.gateway.port, upgradeRequest({ 'Sec-WebSocket-Version': '99' }));
    expect(res).toMatch(/^HTTP\/1\.1 400/);
    await calm.check();
  });

  it('a flood of headers → 431, before any WebSocket exists', async () => {
    const { gw, calm } = await setup();
    const flood = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`X-Flood-${i}`, 'y'.repeat(100)]));
    const res = await rawExchange(gw.gateway.port, upgradeRequest(flood));
    expect(res).toMatch(/^HTTP\/1\.1 431/);
    await calm.check();
    expect(gw.gateway.connectionCount).toBe(3);
  });

  it('a connection that drops in the middle of a frame leaves nothing behind', async () => {
    const { gw, calm } = await setup();
    const raw = await rawWebSocket(gw.gateway.port);
    expect(gw.gateway.connectionCount).toBe(4);
    raw.socket.write(clientFrame(0x1, Buffer.from('{"type":"heartbeat"}')).subarray(0, 5));
    raw.socket.destroy();
    await gw.connections(3);
    await calm.check();
  });

  it('a client that sends a fragmented message over the limit → close 1009', async () => {
    const { gw, calm } = await setup({ GW_MAX_PAYLOAD_BYTES: '2048' });
    const raw = await rawWebSocket(gw.gateway.port);
    const part = Buffer.alloc(1500, 0x20);
    raw.socket.write(Buffer.concat([clientFrame(0x1, part, false), clientFrame(0x0, part, true)]));
    await raw.closed;
    const received = raw.received();
    const closeAt = received.lastIndexOf(Buffer.from([0x88, 0x02]));
    expect(closeAt).toBeGreaterThanOrEqual(0);
    expect(received.readUInt16BE(closeAt + 2)).toBe(1009);
    await calm.check();
  });
});
