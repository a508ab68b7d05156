import { describe, expect, it } from 'vitest';
import { backendDataUpdate, serializeEnvelope } from '../types/envelope';
import type { Filter } from '../types/filter';
import { decodeMessage, decodeRelayed, encodeMessage, presenceBatch } from './wire';

const toGroup = backendDataUpdate('g', 'svc', { n: 1 });
const filter: Filter = { roles: ['admin'], users: ['alice', 'bob'], exceptUsers: ['bob'] };

/** What a receiving instance makes of `message` on group g's channel. */
const arrive = (message: string) => {
  const decoded = decodeMessage(message);
  return decoded && decodeRelayed('group', 'g', decoded.body);
};

describe('wire: the message format', () => {
  it('is `origin\\nframe` without a filter, `origin\\nfilter\\nframe` with one', () => {
    expect(encodeMessage('gw-1', toGroup)).toBe(`gw-1\n${toGroup}`);
    expect(encodeMessage('gw-1', toGroup, filter)).toBe(`gw-1\n${JSON.stringify(filter)}\n${toGroup}`);
    expect(decodeMessage(encodeMessage('gw-1', toGroup, filter))).toEqual({ origin: 'gw-1', body: `${JSON.stringify(filter)}\n${toGroup}` });
    expect(decodeMessage('no separator')).toBeNull();
    expect(decodeMessage('\nno origin')).toBeNull();
  });

  it('decodes an envelope with the filter it was encoded with, and one without as unfiltered', () => {
    expect(arrive(encodeMessage('gw-1', toGroup))).toEqual({ envelope: { type: 'data_update', frame: toGroup } });
    expect(arrive(encodeMessage('gw-1', toGroup, filter))).toEqual({ envelope: { type: 'data_update', frame: toGroup }, filter });
    const toUser = backendDataUpdate(null, 'svc', 'hi');
    expect(decodeRelayed('user', 'alice', `${JSON.stringify({ exceptUsers: ['alice'] })}\n${toUser}`)).toEqual({ envelope: { type: 'data_update', frame: toUser }, filter: { exceptUsers: ['alice'] } });
  });

  it('refuses a filter it cannot read, a filter on anything but a data_update, and a frame that fails its own checks', () => {
    const signal = serializeEnvelope('signal', { group: 'g', from: { userId: 'alice', connectionId: 'c_1' }, kind: 'typing', data: null });
    const batch = presenceBatch({ group: 'g', changes: [], count: 0, version: 1 }).frame;
    const refused = [
      `{"roles":["admin"]\n${toGroup}`, // not JSON
      `{}\n${toGroup}`, // empty
      `{"roles":["root"]}\n${toGroup}`,
      `{"users":["alice","alice"]}\n${toGroup}`,
      `{"users":["alice"],"only":1}\n${toGroup}`,
      `null\n${toGroup}`,
      `\n${toGroup}`,
      `${JSON.stringify(filter)}\n${JSON.stringify(filter)}\n${toGroup}`, // two filters
      `${JSON.stringify(filter)}\n${toGroup}\n`, // a trailing newline
      `${JSON.stringify(filter)}\n${signal}`,
      `${JSON.stringify(filter)}\n${batch}`,
      `${JSON.stringify(filter)}\n${backendDataUpdate('h', 'svc', 1)}`, // another group's
      `${toGroup}\n${JSON.stringify(filter)}`, // in the wrong order
    ];
    for (const body of refused) expect(decodeRelayed('group', 'g', body), body).toBeNull();
    // Unfiltered, both still pass.
    expect(decodeRelayed('group', 'g', signal)).toEqual({ envelope: { type: 'signal', frame: signal } });
    expect(decodeRelayed('group', 'g', batch)).toMatchObject({ envelope: { type: 'presence_batch', frame: batch } });
  });
});
