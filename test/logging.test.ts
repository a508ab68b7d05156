// Log lines carry connectionId, userId and client IP, and never a token.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/utils/logger';
import { startTestGateway } from './helpers/gateway';
import { rawExchange, upgradeRequest } from './helpers/raw';

interface LogLine {
  msg: string;
  connectionId?: string;
  userId?: string;
  ip?: string;
}

describe('logs', () => {
  it('identify, rejection, limits and close are logged with ids and client IP, without tokens', async () => {
    const lines: string[] = [];
    const logger = createLogger('debug', { write: (line: string) => void lines.push(line) });
    const gw = await startTestGateway({ GW_MAX_CONNECTIONS_PER_USER: '1', GW_RATE_MSG_PER_10S: '3' }, { logger });
    const tokens: string[] = [];
    const token = async (sub: string) => {
      const t = await gw.token({ sub, groups: ['g'] });
      tokens.push(t);
      return t;
    };

    const alice = await gw.connect();
    await alice.identify(await token('alice'), ['g']);
    const again = await gw.connect();
    await again.identify(await token('alice'));
    const forged = await gw.connect();
    const forgedToken = `${(await token('mallory')).slice(0, -4)}AAAA`;
    tokens.push(forgedToken);
    await forged.identify(forgedToken);
    for (let i = 0; i < 6; i++) alice.send('data_update', { group: 'g', payload: i });
    await alice.closed;
    await rawExchange(gw.gateway.port, upgradeRequest({ 'X-Forwarded-For': '203.0.113.9', Authorization: `Bearer ${tokens[0]}` }), 200);
    await gw.gateway.stop();

    const text = lines.join('');
    for (const t of tokens) {
      expect(text).not.toContain(t);
      expect(text).not.toContain(t.split('.')[2]!);
    }
    const parsed = lines.map((l) => JSON.parse(l) as LogLine);
    const byMsg = (msg: string) => parsed.filter((l) => l.msg === msg);
    expect(byMsg('identified')[0]).toMatchObject({ userId: 'alice', ip: '127.0.0.1', connectionId: expect.stringMatching(/^c_/) });
    expect(byMsg('identify refused: connections per user')[0]).toMatchObject({ userId: 'alice', ip: '127.0.0.1', connectionId: expect.any(String) });
    expect(byMsg('identify rejected')[0]).toMatchObject({ ip: '127.0.0.1', connectionId: expect.any(String) });
    expect(byMsg('closed for flooding')[0]).toMatchObject({ userId: 'alice', ip: '127.0.0.1' });
    expect(byMsg('connection opened').map((l) => l.ip)).toContain('203.0.113.9');
    expect(byMsg('connection closed').find((l) => l.userId === 'alice')).toMatchObject({ connectionId: expect.any(String), ip: '127.0.0.1' });
  });
});
