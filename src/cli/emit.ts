// `yarn emit --group g --payload '{"x":1}'` (or --user u): publishes a data_update through GW_REDIS_URL, as a backend would.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, readEnvironment } from '../config';
import { createEmitter } from '../emitter';

const USAGE = "usage: yarn emit (--group <group> | --user <userId>) --payload '<JSON>' [--service <name>]";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { group: { type: 'string' }, user: { type: 'string' }, payload: { type: 'string' }, service: { type: 'string' } },
  });
  if ((values.group === undefined) === (values.user === undefined) || values.payload === undefined) {
    console.error(USAGE);
    process.exit(2);
  }
  let payload: unknown;
  try {
    payload = JSON.parse(values.payload);
  } catch {
    console.error('emit: --payload is not valid JSON');
    process.exit(2);
  }
  const { redisUrl } = loadConfig(readEnvironment());
  if (!redisUrl) {
    console.error('emit: GW_REDIS_URL is not set; the emitter publishes through the gateways’ Redis');
    process.exit(1);
  }
  const emitter = createEmitter({ redisUrl, serviceName: values.service ?? 'cli' });
  try {
    const target = values.group !== undefined ? emitter.toGroup(values.group) : emitter.toUser(values.user!);
    const instances = await target.publish(payload);
    console.log(`published to ${values.group !== undefined ? `group ${values.group}` : `user ${values.user}`}: ${instances} gateway instance(s) listening`);
  } finally {
    await emitter.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? `invalid configuration: ${err.message}` : `emit: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
