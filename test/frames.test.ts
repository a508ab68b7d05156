// The validation order for bad frames: BAD_JSON, INVALID_ENVELOPE, UNKNOWN_TYPE; none of them closes the connection.
import { describe, expect, it } from 'vitest';
import { startTestGateway } from './helpers/gateway';

describe('bad frames', () => {
  const cases: [string, string | Buffer, string, boolean?][] = [
    ['not JSON', '{"type":', 'BAD_JSON'],
    ['an empty frame', '', 'BAD_JSON'],
    ['a binary frame', Buffer.from('{"type":"heartbeat"}'), 'INVALID_ENVELOPE', true],
    ['JSON null', 'null', 'INVALID_ENVELOPE'],
    ['a JSON array', '[{"type":"heartbeat"}]', 'INVALID_ENVELOPE'],
    ['a JSON number', '42', 'INVALID_ENVELOPE'],
    ['a JSON string', '"heartbeat"', 'INVALID_ENVELOPE'],
    ['a missing type', '{"data":{}}', 'INVALID_ENVELOPE'],
    ['a non-string type', '{"type":5}', 'INVALID_ENVELOPE'],
    ['an empty type', '{"type":""}', 'INVALID_ENVELOPE'],
    ['an id over 64 characters', JSON.stringify({ type: 'heartbeat', id: 'x'.repeat(65) }), 'INVALID_ENVELOPE'],
    ['a non-string id', '{"type":"heartbeat","id":7}', 'INVALID_ENVELOPE'],
    ['data that is an array', '{"type":"heartbeat","data":[]}', 'INVALID_ENVELOPE'],
    ['data that is a string', '{"type":"heartbeat","data":"x"}', 'INVALID_ENVELOPE'],
    ['an unknown type', '{"type":"launch_missiles"}', 'UNKNOWN_TYPE'],
    ['a prototype key as type', '{"type":"__proto__"}', 'UNKNOWN_TYPE'],
    ['a server-only type', '{"type":"ready"}', 'UNKNOWN_TYPE'],
  ];

  for (const [name, frame, code, binary] of cases) {
    it(`answers ${name} with ${code} and keeps the connection`, async () => {
      const gw = await startTestGateway();
      const client = await gw.join('alice', ['g']);
      client.sendRaw(frame, binary);
      const error = await client.next('error');
      expect(error.data!.code).toBe(code);
      expect(typeof error.data!.message).toBe('string');
      expect(JSON.stringify(error)).not.toMatch(/at .*\.ts:\d+/);
      expect((await client.request('heartbeat')).type).toBe('heartbeat_ack');
    });
  }

  it('replies to a bad envelope by its id when the id itself is well-formed', async () => {
    const gw = await startTestGateway();
    const client = await gw.join('alice', ['g']);
    client.sendRaw('{"type":"nope","id":"q1"}');
    expect((await client.next('error')).replyTo).toBe('q1');
    client.sendRaw('{"type":7,"id":"q2"}');
    expect((await client.next('error')).replyTo).toBe('q2');
  });

  it('checks the type before identification: UNKNOWN_TYPE wins over NOT_IDENTIFIED', async () => {
    const gw = await startTestGateway();
    const client = await gw.connect();
    client.sendRaw('{"type":"nope"}');
    expect((await client.next('error')).data!.code).toBe('UNKNOWN_TYPE');
  });

  it('ignores unknown extra fields', async () => {
    const gw = await startTestGateway();
    const client = await gw.join('alice', ['g']);
    client.sendRaw('{"type":"heartbeat","id":"h","extra":1,"data":{"more":true}}');
    expect((await client.next('heartbeat_ack')).replyTo).toBe('h');
  });
});
