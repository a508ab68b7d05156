// `yarn emit --group g --payload '{"x":1}'` (or --user u), optionally filtered (--role, --only-user, --except-user):
// publishes a data_update through GW_REDIS_URL, as a backend would.
import { loadConfig, readEnvironment, type RedisTarget } from '../config';
import { createEmitter, type Filter } from '../emitter';
import { groupNameSchema } from '../types/domain';
import { filterSchema } from '../types/filter';
import { parseCommandLine, run, UsageError } from './args';

/** How long Redis has to take the message; the emitter itself would wait for it indefinitely. */
const REDIS_DEADLINE_MS = 5000;

const USAGE = `usage: yarn emit (--group <group> | --user <userId>) --payload '<JSON>' [--service <name>]
                 [--role <role>]... [--only-user <userId>]... [--except-user <userId>]...

Publishes a data_update to a group, or to every connection of a user, through the gateways' Redis (GW_REDIS_URL,
from the environment or ./.env), as a backend does with the emitter (src/emitter). The filter options, each
repeatable, narrow who receives it (docs/server-api.md, "Filters"); given together, a connection must pass each.

Options:
  --group <group>           the group to publish to
  --user <userId>           or the user to publish to (one of --group and --user is required)
  --payload <JSON>          the payload, any JSON value (required)
  --service <name>          shown to recipients as from.userId (default: cli)
  --role <role>             only connections whose role is this (client, service or admin)
  --only-user <userId>      only this user's connections
  --except-user <userId>    not this user's connections
  -h, --help                this text

Exit status: 0 published (it prints how many gateway instances had recipients), 1 no GW_REDIS_URL or Redis did not
take the message within ${REDIS_DEADLINE_MS / 1000} s, 2 wrong command line.`;

const command = {
  name: 'emit',
  usage: USAGE,
  options: {
    group: { type: 'string' },
    user: { type: 'string' },
    payload: { type: 'string' },
    service: { type: 'string' },
    role: { type: 'string', multiple: true },
    'only-user': { type: 'string', multiple: true },
    'except-user': { type: 'string', multiple: true },
  },
} as const;

/** Each filter field's option, for messages. */
const FILTER_OPTIONS = { roles: '--role', users: '--only-user', exceptUsers: '--except-user' } as const;

/** The filter the options give (none without filter options), checked with the schema the gateways read it with. */
function filterOf(values: { role?: string[]; 'only-user'?: string[]; 'except-user'?: string[] }): Filter | undefined {
  const given = { roles: values.role, users: values['only-user'], exceptUsers: values['except-user'] };
  if (Object.values(given).every((list) => list === undefined)) return undefined;
  const parsed = filterSchema.safeParse(given);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new UsageError(`${FILTER_OPTIONS[issue.path[0] as keyof typeof FILTER_OPTIONS]}: ${issue.message}`);
}

/** host:port of a Redis URL, without the credentials it may carry. */
function redisHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'an unparsable URL';
  }
}

run(command, async () => {
  const { values } = parseCommandLine(command);
  if ((values.group === undefined) === (values.user === undefined)) throw new UsageError('give one of --group <group> or --user <userId>');
  if (values.group !== undefined && !groupNameSchema.safeParse(values.group).success) {
    throw new UsageError(`--group "${values.group}" is not a group name (letters, digits, ".", "_", ":" and "-", at most 128)`);
  }
  if (values.user !== undefined && (values.user.length === 0 || values.user.length > 256)) throw new UsageError('--user must be 1 to 256 characters');
  const filter = filterOf(values);
  if (values.payload === undefined) throw new UsageError("missing --payload '<JSON>'");
  let payload: unknown;
  try {
    payload = JSON.parse(values.payload);
  } catch (err) {
    throw new UsageError('--payload is not valid JSON', { cause: err });
  }

  let redis: RedisTarget | undefined;
  try {
    ({ redis } = loadConfig(readEnvironment()));
  } catch (err) {
    throw new Error(`invalid configuration: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (!redis) throw new Error('GW_REDIS_URL is not set (nor GW_REDIS_CLUSTER_NODES); the emitter publishes through the gateways’ Redis');
  const where = 'url' in redis ? `Redis at ${redisHost(redis.url)} (GW_REDIS_URL)` : `the Redis Cluster at ${redis.nodes.map((n) => `${n.host}:${n.port}`).join(',')} (GW_REDIS_CLUSTER_NODES)`;

  const emitter = createEmitter({ ...('url' in redis ? { redisUrl: redis.url } : { clusterNodes: redis.nodes }), serviceName: values.service ?? 'cli' });
  const target = values.group !== undefined ? emitter.toGroup(values.group, filter) : emitter.toUser(values.user!, filter);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${where} did not answer within ${REDIS_DEADLINE_MS / 1000} s`)), REDIS_DEADLINE_MS);
  });
  const instances = await Promise.race([target.publish(payload), deadline]).catch((err: unknown) => {
    // ioredis gives up after a few failed connection attempts with a message about its retry option.
    throw err instanceof Error && err.name === 'MaxRetriesPerRequestError' ? new Error(`cannot connect to ${where}`) : err;
  });
  clearTimeout(timer);
  console.log(`published to ${values.group !== undefined ? `group ${values.group}` : `user ${values.user}`}: ${instances} gateway instance(s) listening`);
  await emitter.close();
});
