// The page the browser test loads: the SDK bundled by esbuild, driven through window.start().
import { GatewayClient } from '../../src/client';

interface PageState {
  client: GatewayClient | null;
  received: unknown[];
  readies: boolean[];
  presence: string[];
  /** Several URLs: the client moves to the next one on each connect (as when its instance goes away). */
  start(gatewayUrl: string | string[], sub: string): Promise<void>;
}

declare global {
  interface Window {
    page: PageState;
  }
}

const log = document.getElementById('log')!;
const status = document.getElementById('status')!;
const line = (text: string) => {
  const li = document.createElement('li');
  li.textContent = text;
  log.appendChild(li);
};

window.page = {
  client: null,
  received: [],
  readies: [],
  presence: [],
  async start(gatewayUrl, sub) {
    document.title = `gateway-strategy: ${sub}`;
    const urls = Array.isArray(gatewayUrl) ? gatewayUrl : [gatewayUrl];
    let turn = 0;
    const client = new GatewayClient({
      url: () => urls[turn++ % urls.length]!,
      getToken: async () => (await fetch(`/token?sub=${encodeURIComponent(sub)}`)).text(),
      groups: ['room-1'],
      meta: { browser: navigator.userAgent.includes('Chrome') ? 'chromium' : 'other' },
      initialBackoffMs: 100,
    });
    client.on('state', (s) => (status.textContent = `${sub}: ${s}`));
    client.on('ready', (r) => {
      window.page.readies.push(r.resumed);
      line(`ready: session ${r.sessionId.slice(0, 10)}…, resumed=${r.resumed}`);
    });
    client.on('data', (d) => {
      window.page.received.push(d.payload);
      line(`data from ${d.from.userId}: ${JSON.stringify(d.payload)} (seq ${d.seq})`);
    });
    client.on('presence', (p) => {
      window.page.presence.push(`${p.userId}:${p.status}`);
      line(`presence: ${p.userId} ${p.status}`);
    });
    window.page.client = client;
    await client.connect();
  },
};
