// Secret redaction in messages and log lines (the database-backed test in test/db/ops/redaction
// greps everything a real walflow process wrote; these pin the rules down).
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readSecret, loadConfig } from '../../../src/config/config.js';
import { toStoredError } from '../../../src/engine/retry.js';
import { redactSecrets, registerSecret } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';

function capture(level = 'debug') {
  const lines: string[] = [];
  const destination = new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(chunk.toString()); cb(); } });
  return { log: createLogger({ level, destination }), text: () => lines.join('') };
}

describe('redactSecrets', () => {
  it.each([
    ['postgres://me:s3cr3t@db:5432/app', 'postgres://me:***@db:5432/app'],
    ['postgresql://me:s3cr3t@db/app and postgres://x:y@z/w', 'postgresql://me:***@db/app and postgres://x:***@z/w'],
    ['host=db password=s3cr3t user=me', 'host=db password=*** user=me'],
    ['postgres://db/app?password=s3cr3t&sslmode=require', 'postgres://db/app?password=***&sslmode=require'],
    ['Authorization: Bearer abc.def-ghi', 'Authorization: Bearer ***'],
    ['{"api-key":"k3y-value","x":1}', '{"api-key":"***","x":1}'],
    ['api_key=k3y-value&a=b', 'api_key=***&a=b'],
    ['check the API key (none was configured); apiKeyEnv: OPENAI_API_KEY', 'check the API key (none was configured); apiKeyEnv: OPENAI_API_KEY'],
  ])('%s', (input, expected) => {
    expect(redactSecrets(input)).toBe(expected);
  });

  it('removes registered secrets wherever they appear, in their encoded forms too', () => {
    registerSecret('pa/ss"word#1');
    expect(redactSecrets('echo: pa/ss"word#1')).toBe('echo: ***');
    expect(redactSecrets('url: pa%2Fss%22word%231')).toBe('url: ***');
    expect(redactSecrets(JSON.stringify({ m: 'pa/ss"word#1' }))).toBe('{"m":"***"}');
    registerSecret('abc'); // too short to redact safely
    expect(redactSecrets('abc')).toBe('abc');
  });

  it('config registers the database password and every secret read through readSecret', () => {
    loadConfig({}, { DATABASE_URL: 'postgres://u:Pq7%40zz9@h/db' }, '/x');
    expect(redactSecrets('server said: Pq7@zz9 is wrong')).toBe('server said: *** is wrong');
    expect(readSecret('MY_KEY', { MY_KEY: 'sk-unit-1234567890' })).toBe('sk-unit-1234567890');
    expect(redactSecrets('Incorrect API key provided: sk-unit-1234567890.')).toBe('Incorrect API key provided: ***.');
  });

  it('stored errors (runs.error, step_errors) are redacted, stack included', () => {
    registerSecret('sk-stored-0987654321');
    const err = new Error('bad key sk-stored-0987654321 for postgres://u:pw12345@h/db');
    const stored = toStoredError(err);
    expect(JSON.stringify(stored)).not.toMatch(/sk-stored-0987654321|pw12345/);
    expect(stored.message).toBe('bad key *** for postgres://u:***@h/db');
  });
});

describe('logs', () => {
  it('redact secrets in messages, nested fields and serialized errors, at every level', () => {
    registerSecret('tok-registered-42');
    const { log, text } = capture();
    const url = 'postgres://walflow:hunter2hunter2@db/app';
    log.debug({ url, nested: { deeper: { connection: url } } }, `connecting to ${url}`);
    log.info({ apiKey: 'sk-path-redacted', headers: { authorization: 'Bearer sk-header', 'api-key': 'sk-azure' } }, 'calling');
    log.warn({ err: new Error(`failed with tok-registered-42 at ${url}`) }, 'step failed');
    log.child({ pipeline: 'p' }).error({ config: { databaseUrl: url, password: 'plain-password' } }, 'startup');
    const out = text();
    for (const secret of ['hunter2hunter2', 'sk-path-redacted', 'sk-header', 'sk-azure', 'tok-registered-42', 'plain-password']) expect(out).not.toContain(secret);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatchObject({ level: 20, msg: 'connecting to postgres://walflow:***@db/app', url: 'postgres://walflow:***@db/app' });
    expect(lines[1]).toMatchObject({ apiKey: '***', headers: { authorization: '***', 'api-key': '***' } });
    expect((lines[2]!.err as { message: string; stack: string }).message).toBe('failed with *** at postgres://walflow:***@db/app');
    expect((lines[2]!.err as { stack: string }).stack).toContain('failed with *** at');
    expect(lines[3]).toMatchObject({ pipeline: 'p', config: { databaseUrl: '***', password: '***' } });
  });
});
