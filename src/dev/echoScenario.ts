// `yarn dev:echo`: boots a gateway in-process on a free port and plays a realtime scenario with the client SDK: two
// users in group-1, presence, heartbeat, fan-out, a presence status, a dropped connection resumed without loss, and a
// clean leave.
// Prints a transcript and exits 0, or 1 naming the step that failed.
import WebSocket from 'ws';
import { mintToken } from '../auth/jwt';
import { GatewayClient, type ClientEvents, type WebSocketConstructor } from '../client';
import { loadConfig, readEnvironment } from '../config';
import { startGateway } from '../server';

const GROUP = 'group-1';
const STEP_TIMEOUT_MS = 3000;

type Print = (line: string) => void;

/** Resolves with the next `event` from `client` that satisfies `match`. */
function next<K extends keyof ClientEvents>(client: GatewayClient, event: K, match: (v: ClientEvents[K]) => boolean = () => true): Promise<ClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no "${event}" event within ${STEP_TIMEOUT_MS} ms`));
    }, STEP_TIMEOUT_MS);
    const off = client.on(event, (value) => {
      if (!match(value)) return;
      clearTimeout(timer);
      off();
      resolve(value);
    });
  });
}

/** Runs the scenario against a fresh in-process gateway; resolves true when every step passed. */
export async function runEchoScenario(print: Print, env = readEnvironment()): Promise<boolean> {
  const config = loadConfig({ ...env, GW_PORT: '0', GW_INTERNAL_PORT: '0', GW_HOST: '127.0.0.1', LOG_LEVEL: 'warn' });
  const { keys } = config.auth;
  // The scenario mints its users' tokens, so it needs the secret the gateway verifies with.
  if (keys.kind !== 'secret') {
    print('yarn dev:echo signs its own tokens: it needs GW_JWT_SECRET (or the development secret), not a public key or JWK set');
    return false;
  }
  const gateway = await startGateway({ config });
  const url = `ws://127.0.0.1:${gateway.port}/rt`;
  const user = (sub: string, device: string) =>
    new GatewayClient({
      url,
      getToken: () => mintToken({ sub, groups: [GROUP] }, keys.secret),
      groups: [GROUP],
      meta: { device },
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      initialBackoffMs: 50,
    });
  const alice = user('alice', 'laptop');
  const bob = user('bob', 'phone');
  let step = 'start';
  const run = async <T>(name: string, body: () => Promise<T>): Promise<T> => {
    step = name;
    const result = await body();
    print(`  ok  ${name}`);
    return result;
  };

  print(`gateway on ${url}${config.usingDevSecret ? ' (development JWT secret)' : ''}`);
  try {
    await run(`alice connects and identifies into ${GROUP}`, async () => {
      await alice.connect();
      print(`      session ${alice.sessionId}`);
    });
    await run(`bob connects; alice sees him come UP`, async () => {
      const up = next(alice, 'presence', (p) => p.userId === 'bob' && p.status === 'UP');
      await bob.connect();
      await up;
      print(`      members: ${alice.members(GROUP).map((m) => `${m.userId} (${String(m.meta.device)})`).join(', ')}`);
    });
    await run('heartbeat round trip', async () => {
      print(`      serverTs ${await bob.ping()}`);
    });
    await run('alice publishes; bob receives it', async () => {
      const got = next(bob, 'data');
      await alice.publish(GROUP, { text: 'hello bob' });
      const msg = await got;
      print(`      bob got ${JSON.stringify(msg.payload)} from ${msg.from.userId} (seq ${msg.seq})`);
    });
    await run('bob publishes with echo; both receive it', async () => {
      const both = Promise.all([next(alice, 'data'), next(bob, 'data')]);
      await bob.publish(GROUP, { text: 'hi alice' }, { echo: true });
      await both;
    });
    await run('bob sets his presence to do-not-disturb with a status; alice sees the UPDATE', async () => {
      const update = next(alice, 'presence', (p) => p.userId === 'bob' && p.status === 'UPDATE');
      await bob.setPresence('dnd', { device: 'phone', status: 'in a meeting' });
      const seen = await update;
      print(`      alice sees bob ${seen.availability}: ${JSON.stringify(seen.meta)}`);
    });
    await run("bob's connection drops; he resumes and misses nothing, alice sees no DOWN", async () => {
      let flapped = false;
      const off = alice.on('presence', (p) => (flapped ||= p.userId === 'bob'));
      const resumed = next(bob, 'ready');
      gateway.terminateConnection(bob.connectionId!);
      await alice.publish(GROUP, { text: 'sent while bob was away' });
      const got = next(bob, 'data');
      if (!(await resumed).resumed) throw new Error('bob got a fresh session instead of resuming');
      const msg = await got;
      off();
      if (flapped) throw new Error('alice saw bob go DOWN/UP');
      print(`      bob resumed and got ${JSON.stringify(msg.payload)} (seq ${msg.seq})`);
    });
    await run('bob leaves; alice sees DOWN', async () => {
      const down = next(alice, 'presence', (p) => p.userId === 'bob' && p.status === 'DOWN');
      bob.close();
      await down;
    });
    print('all steps passed');
    return true;
  } catch (err) {
    print(`FAILED at step "${step}": ${err instanceof Error ? err.message : String(err)}`);
    return false;
  } finally {
    alice.close();
    bob.close();
    await gateway.stop();
  }
}

if (require.main === module) {
  runEchoScenario((line) => console.log(line)).then(
    (ok) => process.exit(ok ? 0 : 1),
    (err: unknown) => {
      console.error(`dev:echo could not start: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
