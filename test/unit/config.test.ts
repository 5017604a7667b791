import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { validateDatabaseUrl } from '../../src/db/connection.js';
import { UserError, redactSecrets } from '../../src/errors.js';

describe('configuration', () => {
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
