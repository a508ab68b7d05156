import { describe, expect, it } from 'vitest';
import { ConfigError, DEV_JWT_SECRET, loadConfig } from '.';

const secret = 'a-production-secret-of-at-least-32-bytes';

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig({ GW_JWT_SECRET: secret });
    expect(c).toMatchObject({
      port: 4100,
      host: '0.0.0.0',
      logLevel: 'info',
      tokenExpiryGraceMs: 10000,
      heartbeatIntervalMs: 10000,
      heartbeatTimeoutMs: 25000,
      identifyTimeoutMs: 5000,
      orphanSessionTtlMs: 30000,
      shutdownGraceMs: 5000,
      maxPayloadBytes: 65536,
      usingDevSecret: false,
    });
  });

  it('puts /metrics on GW_PORT + 10000 unless GW_METRICS_PORT is set, so instances differing only in GW_PORT never collide', () => {
    expect(loadConfig({ GW_JWT_SECRET: secret }).metricsPort).toBe(14100);
    expect(loadConfig({ GW_JWT_SECRET: secret, GW_PORT: '4101' }).metricsPort).toBe(14101);
    expect(loadConfig({ GW_JWT_SECRET: secret, GW_PORT: '0' }).metricsPort).toBe(0);
    expect(loadConfig({ GW_JWT_SECRET: secret, GW_PORT: '4101', GW_METRICS_PORT: '9464' }).metricsPort).toBe(9464);
    expect(loadConfig({ GW_JWT_SECRET: secret, GW_PORT: '4101', GW_METRICS_PORT: '' }).metricsPort).toBe(14101);
    expect(() => loadConfig({ GW_JWT_SECRET: secret, GW_PORT: '60000' })).toThrow(/^GW_METRICS_PORT: is unset and its default, GW_PORT \+ 10000, is above 65535/);
  });

  it('uses the development secret only in development', () => {
    expect(loadConfig({ NODE_ENV: 'development' }).usingDevSecret).toBe(true);
    expect(() => loadConfig({})).toThrow(/GW_JWT_SECRET: is required/);
    expect(() => loadConfig({ NODE_ENV: 'production', GW_JWT_SECRET: DEV_JWT_SECRET.slice(0, 31) })).toThrow(/GW_JWT_SECRET: is too weak/);
  });

  it('names the variable that is wrong', () => {
    const bad: [Record<string, string>, string][] = [
      [{ GW_PORT: 'eighty' }, 'GW_PORT'],
      [{ GW_PORT: '70000' }, 'GW_PORT'],
      [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
      [{ GW_HEARTBEAT_TIMEOUT_MS: '-5' }, 'GW_HEARTBEAT_TIMEOUT_MS'],
      [{ GW_HEARTBEAT_INTERVAL_MS: '30000' }, 'GW_HEARTBEAT_INTERVAL_MS'],
    ];
    for (const [env, variable] of bad) {
      let error: unknown;
      try {
        loadConfig({ GW_JWT_SECRET: secret, ...env });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).variable).toBe(variable);
    }
  });

  it('treats empty values as unset', () => {
    expect(loadConfig({ GW_JWT_SECRET: secret, GW_PORT: '' }).port).toBe(4100);
  });
});
