// The admin console in a real browser (Debian's Chromium through playwright-core) against two real gateways on a real
// redis-server, the bundle built by the same function `yarn build` runs. Sign-in (a wrong key refused in the page),
// the overview (both instances; a connection count that rises and falls with real clients), a group's members, a
// user's sessions on both instances and "disconnect everywhere" (both sockets closed with 4005), a publish reaching a
// client and counted, an API error shown in the page, a narrow screen. Every request the page makes is recorded and
// must stay on the console's own origin, and no Content-Security-Policy violation may be reported. Screenshots of
// each page go to test-output/; with UPDATE_DOCS_SCREENSHOT=1 the overview's also to docs/admin-console.png.
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { internalOrigin, useAdminBundle } from './helpers/admin';
import { API_ENV, API_KEY } from './helpers/api';
import { hasChromium, OUTPUT, useChromium } from './helpers/chromium';
import { startTestGateway, type TestGateway } from './helpers/gateway';
import { member } from './helpers/presence';
import { hasRedis, useRedis } from './helpers/redis';

/** The console polls every 2 s: a few polls, with room for a loaded machine. */
const POLL_WAIT = { timeout: 15_000, intervals: [250] };

describe.skipIf(!hasChromium || !hasRedis)('the admin console in Chromium, over two gateways on Redis', () => {
  const redis = useRedis();
  const bundle = useAdminBundle();
  const browser = useChromium();

  const pair = () =>
    Promise.all(
      ['gw-a', 'gw-b'].map((id) => startTestGateway({ ...API_ENV, GW_REDIS_URL: redis.server.url, GW_INSTANCE_ID: id }, { adminAssetsDir: bundle.dir })),
    ) as Promise<[TestGateway, TestGateway]>;

  interface Console {
    page: Page;
    /** Fails unless every request stayed on the console's origin and no CSP violation was reported; closes the page. */
    finish(): Promise<void>;
  }

  /** Opens the console of `gw` in a fresh browser context, recording every request and console message. */
  async function open(gw: TestGateway, { signedIn = true, width = 1280 } = {}): Promise<Console> {
    const context = await browser().newContext({ viewport: { width, height: 900 } });
    const page = await context.newPage();
    const requested: string[] = [];
    const violations: string[] = [];
    page.on('request', (req) => requested.push(req.url()));
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
    });
    await page.goto(`${internalOrigin(gw)}/admin`);
    if (signedIn) await signInThroughForm(page, API_KEY);
    return {
      page,
      finish: async () => {
        const origin = internalOrigin(gw);
        expect(requested.length).toBeGreaterThan(2);
        expect(requested.filter((url) => new URL(url).origin !== origin && !url.startsWith('data:'))).toEqual([]);
        expect(violations).toEqual([]);
        await context.close();
      },
    };
  }

  async function signInThroughForm(page: Page, key: string): Promise<void> {
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  const screenshot = (page: Page, name: string) => {
    mkdirSync(OUTPUT, { recursive: true });
    return page.screenshot({ path: join(OUTPUT, `admin-${name}.png`), fullPage: true });
  };

  it('signs in (a wrong key refused in the page); the overview shows both instances and connections rising and falling with real clients', async () => {
    const [a, b] = await pair();
    const { page, finish } = await open(a, { signedIn: false });
    await signInThroughForm(page, `${API_KEY.slice(0, -1)}?`);
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('UNAUTHORIZED');
    await screenshot(page, 'sign-in-refused');
    await signInThroughForm(page, API_KEY);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();

    const connections = (gw: string) => page.getByTestId(`connections-${gw}`).textContent();
    await expect.poll(() => page.locator('tr[data-instance]').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-instance'))), POLL_WAIT).toEqual(['gw-a', 'gw-b']);
    expect([await connections('gw-a'), await connections('gw-b')]).toEqual(['0', '0']);

    const clients = [await a.join('alice', ['room-1']), await a.join('bob', ['room-1']), await b.join('carol', ['room-1'])];
    await expect.poll(async () => [await connections('gw-a'), await connections('gw-b'), await page.getByTestId('total-connections').textContent()], POLL_WAIT).toEqual(['2', '1', '3']);
    // Traffic for the rate charts over a few polls, more each time: each message fans out to the room on both instances.
    for (let round = 1; round <= 4; round++) {
      for (let n = 0; n < 5 * round; n++) await clients[n % 3]!.request('data_update', { group: 'room-1', payload: { n } });
      await page.waitForResponse((res) => res.url().endsWith('/api/info'));
    }
    await expect.poll(() => page.locator('tr[data-instance="gw-a"] td').nth(6).textContent(), POLL_WAIT).not.toBe('–');
    expect(await page.locator('.chart canvas').count()).toBe(4);
    await screenshot(page, 'overview');
    if (process.env.UPDATE_DOCS_SCREENSHOT === '1') copyFileSync(join(OUTPUT, 'admin-overview.png'), join(__dirname, '..', 'docs', 'admin-console.png'));

    for (const client of clients) await client.close();
    await expect.poll(async () => [await connections('gw-a'), await connections('gw-b')], POLL_WAIT).toEqual(['0', '0']);
    await finish();
  }, 60_000);

  it('lists the busiest groups; opening one lists its members with status and meta', async () => {
    const [a, b] = await pair();
    await member(a, 'alice', ['room-1', 'lobby'], { meta: { device: 'web' } });
    await member(b, 'bob', ['room-1'], { meta: { device: 'ios' }, availability: 'dnd' });
    await member(b, 'carol', ['lobby']);
    const { page, finish } = await open(b);
    await page.getByRole('link', { name: 'Groups' }).click();
    const rows = page.locator('tbody tr');
    await expect.poll(() => rows.allTextContents()).toEqual(['lobby22', 'room-122']);
    await page.getByRole('button', { name: 'room-1' }).click();
    const members = page.getByRole('region', { name: 'Members of room-1' });
    await expect.poll(() => members.locator('tr[data-member]').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-member')))).toEqual(['alice', 'bob']);
    expect(await members.locator('tr[data-member="bob"]').textContent()).toMatch(/^bobdnd.*\{"device":"ios"\}$/);
    expect(await members.locator('tr[data-member="alice"]').textContent()).toMatch(/^aliceonline.*\{"device":"web"\}$/);
    await screenshot(page, 'groups');
    await finish();
  }, 60_000);

  it('finds a user’s sessions on both instances and disconnects the user everywhere after a confirmation: both sockets close with 4005', async () => {
    const [a, b] = await pair();
    const onA = await member(a, 'alice', ['room-1']);
    const onB = await member(b, 'alice', ['room-2']);
    const bystander = await a.join('bob', ['room-1']);
    const { page, finish } = await open(a);
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByLabel('User id').fill('alice');
    await page.getByRole('button', { name: 'Search' }).click();
    const sessions = page.getByRole('region', { name: 'Sessions of alice' });
    const row = (sessionId: string) => sessions.locator(`tr[data-session="${sessionId}"] td`).allTextContents();
    await expect.poll(() => sessions.locator('tr[data-session]').count()).toBe(2);
    expect((await row(onA.ready.sessionId)).slice(0, 4)).toEqual([onA.ready.sessionId, 'gw-a', 'room-1', 'online']);
    expect((await row(onB.ready.sessionId)).slice(0, 4)).toEqual([onB.ready.sessionId, 'gw-b', 'room-2', 'online']);
    expect((await row(onA.ready.sessionId))[5]).toBe('attached');
    await screenshot(page, 'users');

    await sessions.getByRole('button', { name: 'Disconnect everywhere' }).click();
    const dialog = page.getByRole('dialog');
    await expect.poll(() => dialog.textContent()).toContain('End every session of alice, on every instance?');
    await screenshot(page, 'users-confirm');
    // Cancelling does nothing: the barrier shows alice still connected.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect((await onA.client.barrier()).filter((e) => e.type === 'error')).toEqual([]);
    await sessions.getByRole('button', { name: 'Disconnect everywhere' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Disconnect everywhere' }).click();
    for (const { client } of [onA, onB]) {
      expect((await client.next('error')).data).toEqual({ code: 'REVOKED', message: 'ended from the admin console' });
      expect(await client.closed).toEqual({ code: 4005, reason: 'ended from the admin console' });
    }
    await expect.poll(() => page.getByRole('status').textContent()).toBe('Ended 2 sessions of alice (close 4005).');
    await expect.poll(() => sessions.textContent()).toContain('No session.');
    expect((await bystander.barrier()).filter((e) => e.type === 'error')).toEqual([]);
    await finish();
  }, 60_000);

  it('publishes a test message that reaches a connected client and is counted; an API error shows in the page', async () => {
    const [a, b] = await pair();
    const bob = await b.join('bob', ['room-1']);
    const { page, finish } = await open(a);
    await page.getByRole('link', { name: 'Publish' }).click();
    await expect.poll(() => page.getByTestId('delivered').textContent(), POLL_WAIT).toMatch(/^\d/);
    await page.getByLabel('Group').fill('room-1');
    await page.getByLabel('Payload (JSON)').fill('{ "text": "hello from the console" }');
    await page.getByRole('button', { name: 'Publish' }).click();
    const got = await bob.next('data_update', 10_000);
    expect(got.data).toEqual({ group: 'room-1', from: { userId: 'admin-console', connectionId: null }, payload: { text: 'hello from the console' } });
    await expect.poll(() => page.getByRole('status').textContent()).toMatch(/^Published to group room-1 at /);
    // The poll after the publish reads B's totals with the delivery in them.
    await expect.poll(async () => Number(await page.getByTestId('delivered-since').textContent()), POLL_WAIT).toBeGreaterThanOrEqual(1);
    await screenshot(page, 'publish');

    await page.getByLabel('Group').fill('no spaces allowed');
    await page.getByRole('button', { name: 'Publish' }).click();
    const alert = page.getByRole('alert');
    await expect.poll(() => alert.textContent()).toMatch(/^INVALID_REQUEST group names match .* \(field group\)/);
    await screenshot(page, 'error');
    expect((await bob.barrier()).filter((e) => e.type === 'data_update')).toEqual([]);
    await finish();
  }, 60_000);

  it('works at 375 px: nothing wider than the screen, on the overview and the users page', async () => {
    const [a] = await pair();
    await member(a, 'alice', ['room-1']);
    const { page, finish } = await open(a, { width: 375 });
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    await expect.poll(() => page.locator('.chart canvas').count(), POLL_WAIT).toBe(4);
    expect(await overflow()).toBe(0);
    await screenshot(page, 'overview-narrow');
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByLabel('User id').fill('alice');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => page.locator('tr[data-session]').count()).toBe(1);
    expect(await overflow()).toBe(0);
    await screenshot(page, 'users-narrow');
    await finish();
  }, 60_000);
});
