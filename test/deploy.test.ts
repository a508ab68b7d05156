// The deployment files cannot rot silently: docker-compose.yml and the Dockerfile are checked against the facts
// the README's Deploy section and the Nginx config rely on (CI has no Docker engine to run them).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isMap, parse, parseDocument } from 'yaml';
import { loadConfig } from '../src/config';

const root = join(__dirname, '..');
const read = (f: string) => readFileSync(join(root, f), 'utf8');

interface Service {
  image?: string;
  build?: string;
  command?: string[];
  ports?: string[];
  expose?: string[];
  environment?: Record<string, string>;
  env_file?: string;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  restart?: string;
  stop_grace_period?: string;
  networks?: string[] | Record<string, { ipv4_address?: string }>;
  container_name?: string;
  profiles?: string[];
}

const compose = parse(read('docker-compose.yml')) as {
  services: Record<string, Service>;
  networks: Record<string, { driver: string; ipam: { config: { subnet: string }[] } }>;
};

describe('docker-compose.yml', () => {
  const { nginx, gateway, redis } = compose.services;

  it('has nginx, gateway and redis on the gateway_net bridge, each healthchecked and restarted unless stopped', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['gateway', 'nginx', 'redis']);
    expect(compose.networks.gateway_net!.driver).toBe('bridge');
    for (const service of [nginx, gateway, redis]) {
      expect(service!.networks).toEqual(['gateway_net']);
      expect(service!.healthcheck?.test[0]).toBe('CMD');
      expect(service!.restart).toBe('unless-stopped');
    }
  });

  it('gives a stopping gateway time to hand its sessions over before Docker kills it', () => {
    expect(gateway!.stop_grace_period).toBe('30s');
  });

  it('publishes only Nginx, on 80 and 443', () => {
    expect(nginx!.ports).toEqual(['80:80', '443:443']);
    expect(gateway!.ports).toBeUndefined();
    expect(redis!.ports).toBeUndefined();
  });

  it('starts services in order of health', () => {
    expect(nginx!.depends_on).toEqual({ gateway: { condition: 'service_healthy' } });
    expect(gateway!.depends_on).toEqual({ redis: { condition: 'service_healthy' } });
  });

  it('lets the gateway scale: built image, no fixed name, listening on 8080 inside the network, Redis shared', () => {
    expect(gateway!.build).toBe('.');
    expect(gateway!.container_name).toBeUndefined();
    expect(gateway!.expose).toContain('8080');
    expect(gateway!.env_file).toBe('.env');
    expect(gateway!.environment).toMatchObject({ GW_PORT: '8080', GW_REDIS_URL: 'redis://redis:6379', NODE_ENV: 'production' });
    expect(gateway!.healthcheck!.test.join(' ')).toContain('127.0.0.1:8080/health');
    expect(nginx!.environment!.GATEWAY_UPSTREAM).toBe('gateway:8080');
  });

  it('trusts X-Forwarded-For only from the compose network, and the gateway accepts that setting', () => {
    const subnet = compose.networks.gateway_net!.ipam.config[0]!.subnet;
    expect(gateway!.environment!.GW_TRUSTED_PROXIES).toBe(subnet);
    const config = loadConfig({ ...gateway!.environment, GW_JWT_SECRET: 'x'.repeat(40) });
    expect(config.trustProxy('172.29.0.5', 0)).toBe(true);
    expect(config.trustProxy('203.0.113.1', 0)).toBe(false);
    expect(config.port).toBe(8080);
  });

  it('renders the same Nginx template the end-to-end test runs, with the certs and render step mounted', () => {
    expect(nginx!.volumes).toEqual(
      expect.arrayContaining([
        './infra/nginx/nginx.conf.template:/etc/nginx/nginx.conf.template:ro',
        './infra/nginx/render.sh:/etc/nginx/render.sh:ro',
        './infra/nginx/certs:/etc/nginx/certs:ro',
      ]),
    );
    expect(nginx!.command!.join(' ')).toContain('/etc/nginx/render.sh /etc/nginx/nginx.conf.template /etc/nginx/nginx.conf');
    expect(nginx!.environment).toMatchObject({ HTTP_PORT: '80', HTTPS_PORT: '443' });
  });

  it('does not publish the internal port (/metrics, the server API)', () => {
    expect(gateway!.environment!.GW_INTERNAL_PORT).toBe('9464');
    expect(JSON.stringify(compose.services)).not.toContain('9464:');
  });
});

// docker-compose.cluster.yml is used on top of docker-compose.yml; Compose merges mappings key by key, and `!override`
// replaces one whole. (No Docker Compose here: the client has no compose plugin, so `docker compose config` cannot
// check the merge; these tests apply the two rules the override relies on.)
describe('docker-compose.cluster.yml', () => {
  const text = read('docker-compose.cluster.yml');
  const overrideTag = { tag: '!override', collection: 'map' as const, resolve: (map: unknown) => map };
  const override = parse(text, { merge: true, customTags: [overrideTag] }) as { services: Record<string, Service>; volumes: Record<string, unknown> };
  const nodeNames = ['redis-1', 'redis-2', 'redis-3', 'redis-4', 'redis-5', 'redis-6'];
  const nodes = nodeNames.map((name) => [name, override.services[name]!] as const);
  const init = override.services['redis-init']!;
  const gatewayEnv = { ...compose.services.gateway!.environment, ...override.services.gateway!.environment };

  it('adds six redis 7 nodes and a one-shot init, and keeps the single redis out of the way (a profile)', () => {
    expect(Object.keys(override.services).sort()).toEqual(['gateway', 'redis', ...nodeNames, 'redis-init'].sort());
    expect(override.services.redis).toEqual({ profiles: ['single-redis'] });
    for (const [, node] of nodes) {
      expect(node.image).toMatch(/^redis:7/);
      expect(node.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
      expect(node.restart).toBe('unless-stopped');
    }
  });

  it('runs every node in cluster mode, announced by its compose hostname, on its own volume and a fixed address in gateway_net', () => {
    const subnet = compose.networks.gateway_net!.ipam.config[0]!.subnet.replace(/\.0\/24$/, '.');
    const addresses = new Set<string>();
    for (const [name, node] of nodes) {
      const args = node.command!.join(' ');
      expect(node.command![0]).toBe('redis-server');
      for (const arg of ['--cluster-enabled yes', '--cluster-config-file nodes.conf', '--appendonly yes', `--cluster-announce-hostname ${name}`, '--cluster-preferred-endpoint-type hostname']) {
        expect(args).toContain(arg);
      }
      expect(node.volumes).toEqual([`${name.replace('-', '_')}:/data`]);
      expect(override.volumes).toHaveProperty(name.replace('-', '_'));
      const address = (node.networks as Record<string, { ipv4_address: string }>).gateway_net!.ipv4_address;
      expect(address.startsWith(subnet)).toBe(true);
      addresses.add(address);
    }
    expect(addresses.size).toBe(6);
  });

  it('creates the cluster once (three masters, a replica each) after every node is healthy, then waits for cluster_state:ok', () => {
    const script = init.command!.join(' ');
    expect(init.image).toMatch(/^redis:7/);
    expect(script).toContain(`redis-cli --cluster create ${nodeNames.map((n) => `${n}:6379`).join(' ')} --cluster-replicas 1 --cluster-yes`);
    // Idempotent: a cluster that already knows its six nodes is not created again.
    expect(script).toMatch(/if redis-cli -h redis-1 cluster info \| grep -q '\^cluster_known_nodes:6'; then[\s\S]*else[\s\S]*--cluster create[\s\S]*fi/);
    expect(script).toContain("until redis-cli -h redis-1 cluster info | grep -q '^cluster_state:ok'");
    // No `$` for Compose to interpolate.
    expect(script).not.toContain('$');
    expect(init.depends_on).toEqual(Object.fromEntries(nodeNames.map((n) => [n, { condition: 'service_healthy' }])));
    expect(init.restart).toBe('no');
    expect(init.networks).toEqual(['gateway_net']);
  });

  it('points the gateway at the cluster only: GW_REDIS_CLUSTER_NODES set, GW_REDIS_URL empty (unset), and the config accepts it', () => {
    expect(gatewayEnv.GW_REDIS_URL).toBe('');
    expect(gatewayEnv.GW_REDIS_CLUSTER_NODES).toBe(nodeNames.map((n) => `${n}:6379`).join(','));
    const config = loadConfig({ ...gatewayEnv, GW_JWT_SECRET: 'x'.repeat(40) });
    expect(config.redis).toEqual({ nodes: nodeNames.map((host) => ({ host, port: 6379 })) });
  });

  it('starts the gateway once the cluster is made, no longer waiting for the single redis (depends_on replaced, not merged)', () => {
    expect(override.services.gateway!.depends_on).toEqual({ 'redis-init': { condition: 'service_completed_successfully' } });
    const gateway = parseDocument(text, { customTags: [overrideTag] }).getIn(['services', 'gateway']);
    const dependsOn = isMap(gateway) ? gateway.get('depends_on', true) : undefined;
    expect(isMap(dependsOn) && dependsOn.tag).toBe('!override');
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const stages = dockerfile.split(/^FROM /m).slice(1);

  it('builds with dev dependencies and runs with production ones only, on Node 20', () => {
    expect(stages).toHaveLength(2);
    for (const stage of stages) expect(stage).toMatch(/^node:20[\w.-]* AS /);
    expect(stages[0]).toContain('yarn install --frozen-lockfile');
    expect(stages[0]).toContain('yarn build');
    expect(stages[1]).toContain('yarn install --frozen-lockfile --non-interactive --production');
    expect(stages[1]).toContain('COPY --from=build /app/dist ./dist');
  });

  it('runs as a non-root user, exec-form CMD, SIGTERM, with a healthcheck on /health', () => {
    const runtime = stages[1]!;
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toMatch(/^CMD \["node", "dist\/server\.js"\]$/m);
    expect(runtime).toMatch(/^STOPSIGNAL SIGTERM$/m);
    expect(runtime).toMatch(/HEALTHCHECK[\s\S]*\/health/);
  });

  it('keeps secrets, dependencies and certificates out of the build context', () => {
    const ignored = read('.dockerignore').split('\n');
    for (const entry of ['.env', 'node_modules', '.git', 'infra']) expect(ignored).toContain(entry);
  });
});

describe('certificates', () => {
  it('never tracks a private key', () => {
    const ignore = read('.gitignore');
    expect(ignore).toContain('infra/nginx/certs/*');
  });
});
