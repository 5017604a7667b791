// `walflow doctor` against the test cluster: everything walflow needs is there for the admin role
// (exit 0, nothing failed); a role without REPLICATION and without CREATE on the database gets
// exit 2 and a checklist naming each miss with its fix; an existing slot's health is reported.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase, withAdmin } from '../../harness/db.js';
import { walflow, walflowJson } from './support/cli.js';

interface Doctor { ok: boolean; checks: { check: string; status: 'ok' | 'warn' | 'fail'; detail: string; fix?: string }[] }

const db = useTestDatabase();
const role = `wf_doctor_${randomBytes(4).toString('hex')}`;
const slot = `wf_doctor_${randomBytes(4).toString('hex')}`;
const byName = (d: Doctor, name: string) => d.checks.find((c) => c.check === name)!;

beforeAll(async () => {
  await withAdmin(async (c) => {
    await c.query(`CREATE ROLE ${role} LOGIN PASSWORD 'doctor-pw' NOREPLICATION`);
    await c.query(`REVOKE CREATE ON DATABASE ${db.name} FROM PUBLIC`);
  });
});
afterAll(async () => {
  await withAdmin((c) => c.query(`DROP ROLE IF EXISTS ${role}`)).catch(() => undefined);
});

describe('walflow doctor', () => {
  it('passes for the admin role on the test cluster, with every check listed', async () => {
    const { json } = await walflowJson<Doctor>(['doctor'], { DATABASE_URL: db.url, WALFLOW_SLOT_NAME: slot });
    expect(json.ok).toBe(true);
    expect(json.checks.map((c) => c.check)).toEqual([
      'server version', 'wal_level', 'replication slots', 'WAL senders', 'max_slot_wal_keep_size',
      'REPLICATION privilege', 'CREATE on the database', 'pgvector', `slot ${slot}`,
    ]);
    expect(json.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(byName(json, 'wal_level')).toMatchObject({ status: 'ok', detail: 'logical' });
    expect(byName(json, `slot ${slot}`).detail).toMatch(/not created yet/);
  });

  it('a role without REPLICATION nor CREATE: exit 2, each miss with its fix', async () => {
    const u = new URL(db.url);
    u.username = role;
    u.password = 'doctor-pw';
    const { json } = await walflowJson<Doctor>(['doctor'], { DATABASE_URL: u.toString() }, 2);
    expect(json.ok).toBe(false);
    const repl = byName(json, 'REPLICATION privilege');
    expect(repl.status).toBe('fail');
    expect(repl.fix).toContain(`ALTER ROLE ${role} WITH REPLICATION`);
    expect(repl.fix).toContain('rds_replication');
    const create = byName(json, 'CREATE on the database');
    expect(create.status).toBe('fail');
    expect(create.fix).toContain(`GRANT CREATE ON DATABASE ${db.name} TO ${role}`);
    // The human checklist says the same, with the fix under each miss; the password never shows.
    const human = await walflow(['doctor'], { DATABASE_URL: u.toString() });
    expect(human.code).toBe(2);
    expect(human.stdout).toMatch(/\[FAIL\] REPLICATION privilege: .*\n\s+fix: ALTER ROLE/);
    expect(human.stdout).toMatch(/\[ok\] {3}wal_level: logical/);
    expect(human.stdout + human.stderr).not.toContain('doctor-pw');
  });

  it("reports an existing slot's health", async () => {
    await db.pool.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    try {
      const { json } = await walflowJson<Doctor>(['doctor'], { DATABASE_URL: db.url, WALFLOW_SLOT_NAME: slot });
      expect(byName(json, `slot ${slot}`)).toMatchObject({ status: 'ok' });
      expect(byName(json, `slot ${slot}`).detail).toMatch(/^wal_status reserved, inactive, lag \d+ bytes$/);
      expect(byName(json, 'replication slots').detail).toContain(`walflow's slot "${slot}" exists`);
    } finally {
      await db.pool.query('SELECT pg_drop_replication_slot($1)', [slot]);
    }
  });
});
