// `yarn token --sub alice --groups 'group-1,team-*' [--role client] [--ttl 1h]`: prints a JWT signed with the configured secret.
import { parseArgs } from 'node:util';
import { mintToken } from '../auth/jwt';
import { ConfigError, loadConfig, readEnvironment } from '../config';
import { roleSchema } from '../types/domain';

const USAGE = "usage: yarn token --sub <userId> [--groups 'group-1,team-*'] [--role client|service|admin] [--ttl 1h]";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { sub: { type: 'string' }, groups: { type: 'string' }, role: { type: 'string' }, ttl: { type: 'string' } },
  });
  const role = roleSchema.safeParse(values.role ?? 'client');
  if (!values.sub || !role.success) {
    console.error(USAGE);
    process.exit(2);
  }
  const config = loadConfig(readEnvironment());
  const groups = (values.groups ?? '').split(',').map((g) => g.trim()).filter(Boolean);
  const token = await mintToken({ sub: values.sub, groups, role: role.data, ttl: values.ttl ?? '1h' }, config.jwtSecret);
  console.log(token);
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? `invalid configuration: ${err.message}` : `token: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(err instanceof ConfigError ? 1 : 2);
});
