// Configuration: defaults < environment < flags, and validation messages that name every bad key
// with the variable (or flag) it came from, before anything starts; and DATABASE_URL's shape.
import { describe, expect, it, vi } from 'vitest';
import { configSchema, envVarOf, loadConfig, type ConfigInput } from '../../../src/config/config.js';
import { DEFAULTS } from '../../../src/config/defaults.js';
import { validateDatabaseUrl } from '../../../src/db/connection.js';
import { UserError, redactSecrets } from '../../../src/errors.js';

function problem(overrides: Partial<ConfigInput>, env: Record<string, string>): string {
  try {
    loadConfig(overrides, env, '/srv');
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    return (err as Error).message;
  }
  throw new Error('expected a configuration error');
}

describe('configuration defaults', () => {
  it('match the README table', () => {
    expect(loadConfig({}, {}, '/srv')).toEqual({
      dataDir: '/srv/.walflow/pg', pipelinesDir: '/srv/pipelines', logLevel: 'info', workers: 2, maxInFlight: 200,
      leaseMs: 30_000, pollIntervalMs: 1_000, retentionHours: 168, shutdownTimeoutMs: 30_000, replication: true,
      slotName: 'walflow', publicationName: 'walflow', replicationWriters: 2, highWatermark: 50_000, lowWatermark: 25_000, metricsPort: 0,
      uiPort: 0, uiHost: '127.0.0.1', httpAllowHosts: [], httpAllowPrivate: false,
    });
  });

  it('every key has an environment variable', () => {
    for (const key of Object.keys(configSchema.shape)) expect(envVarOf(key as keyof ConfigInput), key).toMatch(/^(DATABASE_URL|WALFLOW_[A-Z_]+)$/);
  });

  it('reads every variable, with flags over variables', () => {
    const env = {
      DATABASE_URL: 'postgres://h/db', WALFLOW_DATA_DIR: 'data', WALFLOW_PIPELINES_DIR: '/p', WALFLOW_LOG_LEVEL: 'debug', WALFLOW_LOG_PRETTY: 'yes',
      WALFLOW_WORKERS: '4', WALFLOW_MAX_IN_FLIGHT: '50', WALFLOW_LEASE_MS: '5000', WALFLOW_POLL_INTERVAL_MS: '250', WALFLOW_RETENTION_HOURS: '0',
      WALFLOW_SHUTDOWN_TIMEOUT_MS: '100', WALFLOW_REPLICATION: 'off', WALFLOW_SLOT_NAME: 'wf_a', WALFLOW_PUBLICATION_NAME: 'wf_b',
      WALFLOW_REPLICATION_WRITERS: '3', WALFLOW_HIGH_WATERMARK: '1000', WALFLOW_LOW_WATERMARK: '10', WALFLOW_METRICS_PORT: '9464',
      WALFLOW_UI_PORT: '8321', WALFLOW_UI_HOST: '0.0.0.0', WALFLOW_UI_TOKEN: 'act-token-0123456789', WALFLOW_UI_VIEW_TOKEN: 'view-token-0123456789',
      WALFLOW_HTTP_ALLOW_HOSTS: ' api.example.com, *.svc.example.com:8443 ,,[fd00::5]:*', WALFLOW_HTTP_ALLOW_PRIVATE: 'yes',
    };
    expect(loadConfig({}, env, '/srv')).toEqual({
      databaseUrl: 'postgres://h/db', dataDir: '/srv/data', pipelinesDir: '/p', logLevel: 'debug', logPretty: true, workers: 4, maxInFlight: 50,
      leaseMs: 5000, pollIntervalMs: 250, retentionHours: 0, shutdownTimeoutMs: 100, replication: false, slotName: 'wf_a', publicationName: 'wf_b',
      replicationWriters: 3, highWatermark: 1000, lowWatermark: 10, metricsPort: 9464,
      uiPort: 8321, uiHost: '0.0.0.0', uiToken: 'act-token-0123456789', uiViewToken: 'view-token-0123456789',
      httpAllowHosts: ['api.example.com', '*.svc.example.com:8443', '[fd00::5]:*'], httpAllowPrivate: true,
    });
    expect(loadConfig({ workers: 1, replication: true }, env, '/srv')).toMatchObject({ workers: 1, replication: true });
    expect(loadConfig({}, { WALFLOW_DATABASE_URL: 'postgres://b/db' }, '/srv').databaseUrl).toBe('postgres://b/db');
    expect(loadConfig({}, { WALFLOW_DATABASE_URL: 'postgres://b/db', DATABASE_URL: 'postgres://a/db' }, '/srv').databaseUrl).toBe('postgres://a/db');
  });

  it('are the one table of defaults the Engine and the replication source read too', () => {
    const c = loadConfig({}, {}, '/srv');
    expect(c).toMatchObject({ maxInFlight: DEFAULTS.maxInFlight, workers: DEFAULTS.workers, highWatermark: DEFAULTS.highWatermark, lowWatermark: DEFAULTS.highWatermark / 2 });
  });

  it('the old name claimBatchSize (WALFLOW_CLAIM_BATCH_SIZE) still sets maxInFlight, with one deprecation warning per name', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      expect(loadConfig({}, { WALFLOW_CLAIM_BATCH_SIZE: '30' }, '/srv').maxInFlight).toBe(30);
      expect(loadConfig({}, { WALFLOW_CLAIM_BATCH_SIZE: '31' }, '/srv').maxInFlight).toBe(31);
      // The new name wins over the old one.
      expect(loadConfig({}, { WALFLOW_CLAIM_BATCH_SIZE: '31', WALFLOW_MAX_IN_FLIGHT: '40' }, '/srv').maxInFlight).toBe(40);
      expect(loadConfig({ claimBatchSize: 12 }, {}, '/srv')).toMatchObject({ maxInFlight: 12 });
      expect(loadConfig({ claimBatchSize: 12 }, {}, '/srv')).not.toHaveProperty('claimBatchSize');
      // A bad value is named by the variable it came from.
      expect(problem({}, { WALFLOW_CLAIM_BATCH_SIZE: '0' })).toBe('invalid configuration: maxInFlight (WALFLOW_CLAIM_BATCH_SIZE): must be a whole number from 1 to 10000 (got "0")');
      const messages = warn.mock.calls.map((c) => String(c[0]));
      expect(messages.filter((m) => m.startsWith('WALFLOW_CLAIM_BATCH_SIZE is deprecated: use WALFLOW_MAX_IN_FLIGHT'))).toHaveLength(1);
      expect(messages.filter((m) => m.startsWith('claimBatchSize is deprecated: use maxInFlight'))).toHaveLength(1);
    } finally {
      warn.mockRestore();
    }
  });

  it('an empty variable counts as unset', () => {
    const c = loadConfig({}, { WALFLOW_WORKERS: '', DATABASE_URL: '' }, '/srv');
    expect(c.workers).toBe(2);
    expect(c.databaseUrl).toBeUndefined();
  });
});

describe('configuration errors', () => {
  it('an outbound-host allowlist entry that is not a host pattern is named', () => {
    expect(problem({}, { WALFLOW_HTTP_ALLOW_HOSTS: 'api.example.com,https://x.example.com/' })).toMatch(
      /httpAllowHosts \(WALFLOW_HTTP_ALLOW_HOSTS\): "https:\/\/x\.example\.com\/" is not a host pattern/,
    );
  });

  it('a console token too short to be safe is refused by name, without echoing it', () => {
    const msg = problem({}, { WALFLOW_UI_TOKEN: 'short-secret' });
    expect(msg).toContain('uiToken (WALFLOW_UI_TOKEN): must be at least 16 characters');
    expect(msg).not.toContain('short-secret');
  });

  it('name every bad key with its variable and the value given, in one message', () => {
    const msg = problem({}, {
      WALFLOW_WORKERS: 'lots', WALFLOW_LOG_LEVEL: 'loud', WALFLOW_REPLICATION: 'maybe', WALFLOW_SLOT_NAME: 'Bad-Name',
      WALFLOW_LEASE_MS: '10', WALFLOW_MAX_IN_FLIGHT: '1.5', WALFLOW_METRICS_PORT: '-1',
    });
    expect(msg).toMatch(/^invalid configuration: /);
    expect(msg).not.toContain('\n');
    for (const part of [
      'workers (WALFLOW_WORKERS): must be a whole number from 0 to 256 (got "lots")',
      'logLevel (WALFLOW_LOG_LEVEL): must be one of fatal, error, warn, info, debug, trace, silent (got "loud")',
      'replication (WALFLOW_REPLICATION): must be true or false (got "maybe")',
      'slotName (WALFLOW_SLOT_NAME): must be 1 to 63 lower-case letters, digits and _ (a replication slot name) (got "Bad-Name")',
      'leaseMs (WALFLOW_LEASE_MS): must be a whole number from 1000 to 3600000 (got "10")',
      'maxInFlight (WALFLOW_MAX_IN_FLIGHT): must be a whole number from 1 to 10000 (got "1.5")',
      'metricsPort (WALFLOW_METRICS_PORT): must be a whole number from 0 to 65535 (got "-1")',
    ]) expect(msg).toContain(part);
  });

  it.each([
    ['WALFLOW_LOG_PRETTY', 'sometimes', 'logPretty (WALFLOW_LOG_PRETTY): must be true or false (got "sometimes")'],
    ['WALFLOW_POLL_INTERVAL_MS', '5', 'pollIntervalMs (WALFLOW_POLL_INTERVAL_MS): must be a whole number from 10 to 600000 (got "5")'],
    ['WALFLOW_RETENTION_HOURS', '-3', 'retentionHours (WALFLOW_RETENTION_HOURS): must be a whole number from 0 to 100000 (got "-3")'],
    ['WALFLOW_SHUTDOWN_TIMEOUT_MS', 'soon', 'shutdownTimeoutMs (WALFLOW_SHUTDOWN_TIMEOUT_MS): must be a whole number from 0 to 3600000 (got "soon")'],
    ['WALFLOW_PUBLICATION_NAME', 'my pub', 'publicationName (WALFLOW_PUBLICATION_NAME): must be 1 to 63 lower-case letters, digits and _ (got "my pub")'],
    ['WALFLOW_HIGH_WATERMARK', '99', 'highWatermark (WALFLOW_HIGH_WATERMARK): must be a whole number from 100 to 100000000 (got "99")'],
  ])('%s=%s', (name, value, expected) => {
    expect(problem({}, { [name]: value })).toBe(`invalid configuration: ${expected}`);
  });

  it('names the flag when the value came from one', () => {
    expect(problem({ workers: 'many' as unknown as number, metricsPort: '70000' as unknown as number }, { WALFLOW_WORKERS: '3' })).toBe(
      'invalid configuration: workers (--workers): must be a whole number from 0 to 256 (got "many"); metricsPort (--metrics-port): must be a whole number from 0 to 65535 (got "70000")',
    );
  });

  it('lowWatermark must be below highWatermark', () => {
    expect(problem({}, { WALFLOW_HIGH_WATERMARK: '1000', WALFLOW_LOW_WATERMARK: '1000' })).toBe(
      'invalid configuration: lowWatermark (WALFLOW_LOW_WATERMARK) must be below highWatermark (WALFLOW_HIGH_WATERMARK): got 1000 and 1000',
    );
    expect(problem({}, { WALFLOW_LOW_WATERMARK: '60000' })).toMatch(/lowWatermark \(WALFLOW_LOW_WATERMARK\) must be below highWatermark \(WALFLOW_HIGH_WATERMARK\): got 60000 and 50000$/);
    // Reported together with the other problems.
    expect(problem({}, { WALFLOW_LOW_WATERMARK: '60000', WALFLOW_WORKERS: 'x' })).toMatch(/workers \(WALFLOW_WORKERS\).*; lowWatermark/);
  });

  it('without a low watermark, it is half the high one', () => {
    expect(loadConfig({}, { WALFLOW_HIGH_WATERMARK: '1000' }, '/srv')).toMatchObject({ highWatermark: 1000, lowWatermark: 500 });
    expect(loadConfig({}, { WALFLOW_HIGH_WATERMARK: '1000', WALFLOW_LOW_WATERMARK: '0' }, '/srv')).toMatchObject({ lowWatermark: 0 });
  });

  it('never echoes a connection string', () => {
    const msg = problem({}, { DATABASE_URL: 'postgres://u:hunter2-secret@h/db', WALFLOW_WORKERS: '-1' });
    expect(msg).not.toContain('hunter2');
    expect(msg).not.toContain('postgres://');
  });
});

describe('configuration precedence', () => {
  it('defaults, then environment, then explicit overrides', () => {
    expect(loadConfig({}, {}, '/srv/app')).toMatchObject({ workers: 2, dataDir: '/srv/app/.walflow/pg'});
    const env = { WALFLOW_WORKERS: '6', DATABASE_URL: 'postgres://h/db' };
    expect(loadConfig({}, env, '/x')).toMatchObject({ workers: 6, databaseUrl: 'postgres://h/db' });
    expect(loadConfig({ workers: 3 }, env, '/x').workers).toBe(3);
  });

  it('names the bad key and its environment variable', () => {
    const err = (() => {
      try {
        loadConfig({}, { WALFLOW_WORKERS: 'lots', WALFLOW_LOG_LEVEL: 'loud' }, '/x');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/workers \(WALFLOW_WORKERS\)/);
    expect((err as Error).message).toMatch(/logLevel \(WALFLOW_LOG_LEVEL\)/);
  });
});

describe('DATABASE_URL validation', () => {
  it('accepts postgres URLs', () => {
    expect(validateDatabaseUrl('postgresql://u:p@db.example:5433/app')).toBe('postgresql://u:p@db.example:5433/app');
  });
  it.each([
    ['not a url', /not a valid URL/],
    ['mysql://u@h/db', /must start with postgres:\/\//],
    ['postgres:///db', /no host/],
  ])('rejects %s with one actionable line', (url, pattern) => {
    expect(() => validateDatabaseUrl(url)).toThrow(pattern);
  });
  it('never echoes a password', () => {
    expect(() => validateDatabaseUrl('postgres://u:hunter2@')).toThrow(UserError);
    try {
      validateDatabaseUrl('mysql://u:hunter2@h/db');
    } catch (e) {
      expect((e as Error).message).not.toContain('hunter2');
    }
    expect(redactSecrets('connect postgres://me:s3cret@h/db failed; password=s3cret')).not.toContain('s3cret');
  });
});
