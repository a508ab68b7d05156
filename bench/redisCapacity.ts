// How many gateway messages per second one redis-server carries on this machine: P publishers PUBLISH messages in
// the gateway's wire format (origin + serialized data_update, ~200 bytes) to group channels that S subscriber
// connections (standing in for S gateway instances) hold. Run: yarn bench:redis [--seconds 5] [--instances 2]
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { channelName, encodeMessage } from '../src/broker/wire';
import { integerOption, parseCommandLine, positiveOption, run } from '../src/cli/args';
import { serializeEnvelope } from '../src/types/envelope';
import { cpuSeconds, freePort } from './proc';

const USAGE = `usage: yarn bench:redis [--seconds 5] [--instances 2] [--publishers 2]

Measures how many gateway messages per second one redis-server carries on this machine: publishers PUBLISH messages
in the gateway's wire format (~240 bytes) to 100 group channels held by subscriber connections standing in for
gateway instances. Starts its own redis-server on a free port (needs the binary); prints the figures as JSON.

Options:
  --seconds <s>        how long to publish (default: 5)
  --instances <n>      subscriber connections standing in for gateway instances (default: 2)
  --publishers <n>     publishing connections (default: 2)
  -h, --help           this text

Exit status: 0 measured, 1 the measurement failed, 2 wrong command line.`;

const command = {
  name: 'bench:redis',
  usage: USAGE,
  options: { seconds: { type: 'string', default: '5' }, instances: { type: 'string', default: '2' }, publishers: { type: 'string', default: '2' } },
} as const;

const GROUPS = 100;
const IN_FLIGHT = 256;



interface Load {
  seconds: number;
  instances: number;
  publishers: number;
}

run(command, async () => {
  const { values } = parseCommandLine(command);
  const load: Load = {
    seconds: positiveOption('--seconds', values.seconds),
    instances: integerOption('--instances', values.instances, 1, 1000),
    publishers: integerOption('--publishers', values.publishers, 1, 1000),
  };
  const port = await freePort();
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await new Promise((resolve, reject) => server.once('spawn', resolve).once('error', reject));
  try {
    console.log(JSON.stringify(await measure(`redis://127.0.0.1:${port}`, server.pid!, load), null, 2));
  } finally {
    server.kill('SIGKILL');
  }
});

async function measure(url: string, serverPid: number, load: Load) {
  await new Promise((r) => setTimeout(r, 300));
  // A client that cannot reach the server fails its commands after a few retries instead of logging its own errors.
  const client = () => new Redis(url, { maxRetriesPerRequest: 3 }).on('error', () => undefined);
  const channels = Array.from({ length: GROUPS }, (_, i) => channelName('group', `group-${i}`));
  let received = 0;
  const subs = await Promise.all(
    Array.from({ length: load.instances }, async () => {
      const sub = client();
      sub.on('message', () => received++);
      await sub.subscribe(...channels);
      return sub;
    }),
  );
  const frame = serializeEnvelope('data_update', { group: 'group-0', from: { userId: 'user-123', connectionId: 'c_AAAAAAAAAAAAAAAAAAAAAA' }, payload: { text: 'x'.repeat(60), ts: 1 } });
  const message = encodeMessage('gw-bench-0000', frame);
  const deadline = Date.now() + load.seconds * 1000;
  let published = 0;
  const cpuBefore = cpuSeconds(serverPid);
  const started = Date.now();
  await Promise.all(
    Array.from({ length: load.publishers }, async (_, p) => {
      const pub = client();
      let inFlight = 0;
      let i = p;
      await new Promise<void>((done, fail) => {
        const pump = () => {
          while (inFlight < IN_FLIGHT && Date.now() < deadline) {
            inFlight++;
            pub.publish(channels[i++ % GROUPS]!, message).then(() => {
              inFlight--;
              published++;
              pump();
            }, fail);
          }
          if (inFlight === 0 && Date.now() >= deadline) done();
        };
        pump();
      });
      pub.disconnect();
    }),
  );
  await new Promise((r) => setTimeout(r, 300));
  const elapsed = (Date.now() - started) / 1000;
  const cpu = cpuSeconds(serverPid) - cpuBefore;
  for (const s of subs) s.disconnect();
  return {
    messageBytes: Buffer.byteLength(message),
    instances: load.instances,
    publishers: load.publishers,
    seconds: Number(elapsed.toFixed(2)),
    publishedPerSec: Math.round(published / elapsed),
    deliveredToInstancesPerSec: Math.round(received / elapsed),
    redisCpuCoreFraction: Number((cpu / elapsed).toFixed(2)),
    publishedPerRedisCpuSec: Math.round(published / cpu),
  };
}
