// `walflow doctor`: checks a database for everything walflow needs, and says how to fix each miss.
// Read-only (it creates nothing), so it is safe against production before a first deployment.
import type { Queryable } from '../db/queryable.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  check: string;
  status: CheckStatus;
  /** What was found. */
  detail: string;
  /** What to do about it (absent when ok). */
  fix?: string;
}


const MIN_SERVER = 140000; // pgoutput protocol 2+ and pg_replication_slots.wal_status (13+) with the tested range (14-17)
/** Provider roles that grant what REPLICATION grants elsewhere (Amazon RDS / Aurora). */
const REPLICATION_ROLES = ['rds_replication'];

const ok = (check: string, detail: string): Check => ({ check, status: 'ok', detail });
const miss = (check: string, status: 'warn' | 'fail', detail: string, fix: string): Check => ({ check, status, detail, fix });

export async function runDoctor(db: Queryable, opts: { slotName: string }): Promise<Check[]> {
  const setting = async (name: string): Promise<string> => (await db.query<{ v: string }>('SELECT current_setting($1) AS v', [name])).rows[0]!.v;
  const checks: Check[] = [];

  const version = Number(await setting('server_version_num'));
  const versionText = await setting('server_version');
  checks.push(version >= MIN_SERVER
    ? ok('server version', `PostgreSQL ${versionText}${version >= 170000 ? ' (failover slots available)' : ''}`)
    : miss('server version', 'fail', `PostgreSQL ${versionText}`, 'walflow needs PostgreSQL 14 or later: upgrade the server'));

  const walLevel = await setting('wal_level');
  checks.push(walLevel === 'logical'
    ? ok('wal_level', 'logical')
    : miss('wal_level', 'fail', walLevel, 'set wal_level = logical and restart the server (managed services: see docs/deploying.md for the parameter that enables logical replication)'));

  const slot = (await db.query<{ s: Record<string, unknown>; lag_bytes: string | null }>(
    `SELECT to_jsonb(s) AS s, pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint::text AS lag_bytes
       FROM pg_replication_slots s WHERE slot_name = $1`, [opts.slotName])).rows[0];

  const maxSlots = Number(await setting('max_replication_slots'));
  const usedSlots = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM pg_replication_slots')).rows[0]!.n);
  const freeSlots = maxSlots - usedSlots;
  checks.push(freeSlots > 0 || slot
    ? ok('replication slots', `${usedSlots} of ${maxSlots} used${slot ? `; walflow's slot "${opts.slotName}" exists` : ''}`)
    : miss('replication slots', 'fail', `all ${maxSlots} in use and "${opts.slotName}" is not one of them`, 'raise max_replication_slots (restart needed), or drop an unused slot with pg_drop_replication_slot(name)'));

  const maxSenders = Number(await setting('max_wal_senders'));
  const usedSenders = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_replication')).rows[0]!.n);
  const ownActive = slot?.s.active === true;
  checks.push(maxSenders - usedSenders > 0 || ownActive
    ? ok('WAL senders', `${usedSenders} of ${maxSenders} in use`)
    : miss('WAL senders', 'fail', `all ${maxSenders} in use`, 'raise max_wal_senders (restart needed): walflow streams through one'));

  const keep = await setting('max_slot_wal_keep_size');
  checks.push(keep === '-1'
    ? miss('max_slot_wal_keep_size', 'warn', 'unlimited: a stopped or stalled walflow makes the server keep WAL until its disk is full',
      'set max_slot_wal_keep_size to what the disk can spare (e.g. 4GB); past it the slot is invalidated and walflow stops replicating until a re-backfill (docs/deploying.md)')
    : ok('max_slot_wal_keep_size', `${keep}: a slot further behind than this is invalidated (walflow then stops replicating and asks for a re-backfill)`));

  const role = (await db.query<{ name: string; db: string; rolsuper: boolean; rolreplication: boolean; provider_role: string | null; can_create: boolean }>(
    `SELECT current_user AS name, current_database() AS db, r.rolsuper, r.rolreplication, has_database_privilege(current_database(), 'CREATE') AS can_create,
            (SELECT string_agg(p.rolname, ',') FROM pg_roles p WHERE p.rolname = ANY($1) AND pg_has_role(current_user, p.oid, 'member')) AS provider_role
       FROM pg_roles r WHERE r.rolname = current_user`, [REPLICATION_ROLES])).rows[0]!;
  checks.push(role.rolsuper || role.rolreplication || role.provider_role
    ? ok('REPLICATION privilege', `role ${role.name}: ${role.rolsuper ? 'superuser' : role.rolreplication ? 'REPLICATION' : `member of ${role.provider_role}`}`)
    : miss('REPLICATION privilege', 'fail', `role ${role.name} has neither REPLICATION nor a provider equivalent`,
      `ALTER ROLE ${role.name} WITH REPLICATION (Amazon RDS / Aurora: GRANT rds_replication TO ${role.name}); or run only workers on this role (walflow run --no-replication)`));
  checks.push(role.can_create
    ? ok('CREATE on the database', `role ${role.name} may create schema walflow and the publication`)
    : miss('CREATE on the database', 'fail', `role ${role.name} lacks CREATE on database ${role.db}`,
      `GRANT CREATE ON DATABASE ${role.db} TO ${role.name} (walflow creates schema walflow and its publication), or have an owner run \`walflow migrate\` and create the publication (docs/guarantees.md, least privilege)`));

  const vector = (await db.query<{ default_version: string; installed_version: string | null }>(
    `SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'vector'`)).rows[0];
  if (!vector) {
    checks.push(miss('pgvector', 'warn', 'not available on this server', 'only embedding pipelines need it: install pgvector on the server (managed services: docs/deploying.md), then CREATE EXTENSION vector'));
  } else if (!vector.installed_version) {
    checks.push(miss('pgvector', 'warn', `available (${vector.default_version}) but not installed in this database`, 'CREATE EXTENSION vector (needed by embedding pipelines; HNSW indexes need 0.5.0 or later)'));
  } else {
    const [maj = 0, min = 0] = vector.installed_version.split('.').map(Number);
    checks.push(maj > 0 || min >= 5
      ? ok('pgvector', `installed ${vector.installed_version}`)
      : miss('pgvector', 'warn', `installed ${vector.installed_version}`, 'ALTER EXTENSION vector UPDATE: HNSW indexes need pgvector 0.5.0 or later'));
  }

  checks.push(slotHealth(opts.slotName, slot));
  return checks;
}

function slotHealth(name: string, slot: { s: Record<string, unknown>; lag_bytes: string | null } | undefined): Check {
  const check = `slot ${name}`;
  if (!slot) return ok(check, 'not created yet: `walflow run` creates it (changes before that need `walflow backfill`)');
  const s = slot.s;
  const recover = `stop walflow, SELECT pg_drop_replication_slot('${name.replace(/'/g, "''")}'), start walflow run, then walflow backfill <pipeline> --restart for each pipeline with a source (docs/deploying.md)`;
  if (s.slot_type !== 'logical' || s.plugin !== 'pgoutput') return miss(check, 'fail', `not a pgoutput logical slot (${String(s.slot_type)}, ${String(s.plugin)})`, 'set another WALFLOW_SLOT_NAME, or drop this slot');
  const invalid = typeof s.invalidation_reason === 'string' ? s.invalidation_reason : s.wal_status === 'lost' ? 'wal_status lost' : s.conflicting === true ? 'conflicting' : undefined;
  if (invalid) return miss(check, 'fail', `invalidated (${invalid}): the changes after ${String(s.confirmed_flush_lsn)} are gone from WAL`, recover);
  const lag = slot.lag_bytes === null ? null : Number(slot.lag_bytes);
  const failover = typeof s.failover === 'boolean' ? `, failover ${s.failover}` : ''; // PostgreSQL 17+
  const detail = `wal_status ${String(s.wal_status)}, ${s.active ? 'active' : 'inactive'}, lag ${lag ?? '?'} bytes${failover}`;
  if (s.wal_status === 'unreserved') return miss(check, 'warn', `${detail}: about to be invalidated`, 'start (or unblock) the walflow leader now, or raise max_slot_wal_keep_size');
  return ok(check, detail);
}

/** 0 when nothing failed (warnings allowed), 2 when a check failed. */
export function doctorExitCode(checks: readonly Check[]): number {
  return checks.some((c) => c.status === 'fail') ? 2 : 0;
}
