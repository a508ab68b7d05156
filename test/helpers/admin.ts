// The admin console for the suites that serve it: bundled once per file by the build `yarn build` runs
// (scripts/build-admin.ts) into a temporary folder the gateways are pointed at, removed afterwards; and a sign-in
// over HTTP, as the console's page makes it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, expect } from 'vitest';
import { buildAdmin } from '../../scripts/build-admin';
import { API_KEY } from './api';
import type { TestGateway } from './gateway';

/** The bundle's folder, set once the enclosing describe block's beforeAll ran. */
export function useAdminBundle(): { readonly dir: string } {
  const shared = { dir: '' };
  beforeAll(async () => {
    shared.dir = mkdtempSync(join(tmpdir(), 'gw-admin-'));
    await buildAdmin(shared.dir);
  }, 60_000);
  afterAll(() => rmSync(shared.dir, { recursive: true, force: true }));
  return shared;
}

/** The internal listener's origin, where /admin and /api are. */
export const internalOrigin = (gw: TestGateway) => `http://127.0.0.1:${gw.gateway.internalPort}`;

/** Signs in with `key` as the page does; resolves with the Cookie header to send (`gw_admin=<token>`). */
export async function signIn(gw: TestGateway, key = API_KEY): Promise<string> {
  const res = await request(internalOrigin(gw)).post('/admin/session').set('Origin', internalOrigin(gw)).send({ key });
  expect(res.status, JSON.stringify(res.body)).toBe(204);
  const cookie = ([] as string[]).concat(res.headers['set-cookie'] ?? [])[0] ?? '';
  return cookie.split(';')[0]!;
}
