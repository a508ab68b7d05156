// `yarn dev:echo`: boots a gateway in-process on a free port, plays identify → presence → heartbeat → fan-out
// with two clients in group-1, prints a transcript, and exits 0 (or 1 naming the step that failed).
import { mintToken } from '../auth/jwt';
import { loadConfig, readEnvironment } from '../config';
import { startGateway } from '../server';
import { ProbeClient, type ServerEnvelope } from './ProbeClient';

const GROUP = 'group-1';

type Print = (line: string) => void;

function expectType(env: ServerEnvelope, type: string): ServerEnvelope {
  if (env.type !== type) throw new Error(`expected "${type}", got ${JSON.stringify(env)}`);
  return env;
}

/** Runs the scenario against a fresh in-process gateway; resolves true when every step passed. */
export async function runEchoScenario(print: Print, env = readEnvironment()): Promise<boolean> {
  const config = loadConfig({ ...env, GW_PORT: '0', GW_METRICS_PORT: '0', GW_HOST: '127.0.0.1', LOG_LEVEL: 'warn' });
  const gateway = await startGateway({ config });
  const url = `ws://127.0.0.1:${gateway.port}/rt`;
  const clients: ProbeClient[] = [];
  const token = (sub: string) => mintToken({ sub, groups: [GROUP] }, config.jwtSecret);
  let step = 'start';
  const run = async <T>(name: string, body: () => Promise<T>): Promise<T> => {
    step = name;
    const result = await body();
    print(`  ok  ${name}`);
    return result;
  };

  print(`gateway on ${url}${config.usingDevSecret ? ' (development JWT secret)' : ''}`);
  try {
    const alice = await run('alice connects and gets hello', async () => {
      const c = await ProbeClient.connect(url);
      clients.push(c);
      expectType(await c.next('hello'), 'hello');
      return c;
    });
    await run(`alice identifies into ${GROUP}`, async () => {
      const ready = expectType(await alice.identify(await token('alice'), [GROUP], { device: 'laptop' }), 'ready');
      print(`      ready: session ${String(ready.data?.sessionId)}`);
    });
    const bob = await run(`bob connects and identifies into ${GROUP}`, async () => {
      const c = await ProbeClient.connect(url);
      clients.push(c);
      await c.next('hello');
      const ready = expectType(await c.identify(await token('bob'), [GROUP], { device: 'phone' }), 'ready');
      const [group] = ready.data?.groups as { members: { userId: string }[] }[];
      print(`      members: ${group!.members.map((m) => m.userId).join(', ')}`);
      return c;
    });
    await run('alice sees bob come UP', async () => {
      const up = await alice.next('presence_update');
      if (up.data?.userId !== 'bob' || up.data.status !== 'UP') throw new Error(`unexpected ${JSON.stringify(up.data)}`);
    });
    await run('heartbeat is acknowledged', async () => {
      const ack = expectType(await bob.request('heartbeat', {}), 'heartbeat_ack');
      print(`      serverTs ${String(ack.data?.serverTs)}`);
    });
    await run('alice publishes; bob receives, alice gets ack', async () => {
      expectType(await alice.request('data_update', { group: GROUP, payload: { text: 'hello bob' } }), 'ack');
      const msg = await bob.next('data_update');
      print(`      bob got ${JSON.stringify(msg.data?.payload)} from ${String((msg.data?.from as { userId: string }).userId)}`);
    });
    await run('bob publishes with echo; both receive it', async () => {
      bob.send('data_update', { group: GROUP, payload: { text: 'hi alice' }, echo: true });
      await Promise.all([alice.next('data_update'), bob.next('data_update')]);
    });
    await run('bob leaves; alice sees DOWN', async () => {
      await bob.close();
      const down = await alice.next('presence_update');
      if (down.data?.userId !== 'bob' || down.data.status !== 'DOWN') throw new Error(`unexpected ${JSON.stringify(down.data)}`);
    });
    print('all steps passed');
    return true;
  } catch (err) {
    print(`FAILED at step "${step}": ${err instanceof Error ? err.message : String(err)}`);
    return false;
  } finally {
    for (const c of clients) c.socket.terminate();
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
