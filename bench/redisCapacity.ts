// How many gateway messages per second one redis-server carries on this machine: P publishers PUBLISH messages in
// the gateway's wire format (origin + serialized data_update, ~200 bytes) to group channels that S subscriber
// connections (standing in for S gateway instances) hold. Run: yarn bench:redis [--seconds 5] [--instances 2]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { encodeMessage, keys } from '../src/broker/wire';
import { serializeEnvelope } from '../src/types/envelope';
import { freePort } from '../test/helpers/redis';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, instances: { type: 'string', default: '2' }, publishers: { type: 'string', default: '2' } } });
const SECONDS = Number(values.seconds);
const INSTANCES = Number(values.instances);
const PUBLISHERS = Number(values.publishers);
const GROUPS = 100;
const IN_FLIGHT = 256;

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function main(): Promise<void> {
  const port = await freePort();
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  const url = `redis://127.0.0.1:${port}`;
  const channels = Array.from({ length: GROUPS }, (_, i) => keys.channel('group', `group-${i}`));
  let received = 0;
  const subs = await Promise.all(
    Array.from({ length: INSTANCES }, async () => {
      const sub = new Redis(url);
      sub.on('message', () => received++);
      await sub.subscribe(...channels);
      return sub;
    }),
  );
  const frame = serializeEnvelope('data_update', { group: 'group-0', from: { userId: 'user-123', connectionId: 'c_AAAAAAAAAAAAAAAAAAAAAA' }, payload: { text: 'x'.repeat(60), ts: 1 } });
  const message = encodeMessage('gw-bench-0000', frame);
  const deadline = Date.now() + SECONDS * 1000;
  let published = 0;
  const cpuBefore = cpuSeconds(server.pid!);
  const started = Date.now();
  await Promise.all(
    Array.from({ length: PUBLISHERS }, async (_, p) => {
      const pub = new Redis(url);
      let inFlight = 0;
      let i = p;
      await new Promise<void>((done) => {
        const pump = () => {
          while (inFlight < IN_FLIGHT && Date.now() < deadline) {
            inFlight++;
            void pub.publish(channels[i++ % GROUPS]!, message).then(() => {
              inFlight--;
              published++;
              pump();
            });
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
  const cpu = cpuSeconds(server.pid!) - cpuBefore;
  for (const s of subs) s.disconnect();
  server.kill('SIGKILL');
  const result = {
    messageBytes: Buffer.byteLength(message),
    instances: INSTANCES,
    publishers: PUBLISHERS,
    seconds: Number(elapsed.toFixed(2)),
    publishedPerSec: Math.round(published / elapsed),
    deliveredToInstancesPerSec: Math.round(received / elapsed),
    redisCpuCoreFraction: Number((cpu / elapsed).toFixed(2)),
    publishedPerRedisCpuSec: Math.round(published / cpu),
  };
  console.log(JSON.stringify(result, null, 2));
}

void main();
