// The six fault-injection scenarios. Each runs on its own throwaway cluster with real `walflow run`
// processes and ends with the invariant check (lib.ts). Sizes come from ScenarioOptions: the issue's
// sizes by default (bench/chaos/run.ts), smaller ones inside `npm test` (test/db/chaos).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';
import { chunkText } from '../../src/steps/chunk/splitter.js';
import { estimateTokens } from '../../src/steps/embedders/openai-provider.js';
import { fromPgVector } from '../../src/steps/embedding/vectors.js';
import { fakeEmbedding, startFakeEmbeddingsServer, type FaultSpec } from '../../test/fixtures/fake-embeddings-server.js';
import { CHAOS_CHUNKING } from '../../test/fixtures/chaos/pipelines/embed.js';
import { createCountedSchema, createDocsSchema, docBody } from '../../test/fixtures/chaos/schema.js';
import {
  checkCounted, killAll, itemsLoad, leaderPid, memoryOf, num, q, ROOT, secretLeaks, settle, sleep, slotCaughtUp,
  spawnWalflow, startCluster, waitReady, walflowEnv, type ChaosCluster, type Invariants, type Runner,
} from './lib.js';
import { childrenScenario, signalsScenario, sleepersScenario } from './wait-scenarios.js';
import { sqlPipelinesScenario } from './sql-pipelines.js';

const run = promisify(execFile);

export interface ScenarioResult {
  scenario: string;
  /** Faults injected, total, and what they were. */
  faults: number;
  faultDetail: string;
  rows: number;
  completed: number;
  failedExpected: number;
  failedUnexpected: number;
  lost: number;
  duplicated: number;
  stuck: number;
  slotCaughtUp: boolean | null;
  seconds: number;
  /** Invariant violations (empty: the scenario passed). */
  problems: string[];
  /** Scenario-specific measurements. */
  metrics: Record<string, number | string | boolean>;
}

export interface ScenarioOptions {
  /** 1: rows inserted (then updated and deleted) under SIGKILLs, and the kills. */
  killRows: number;
  kills: number;
  /** 2: rows, and immediate-mode restarts of PostgreSQL. */
  restartRows: number;
  restarts: number;
  /** 3: documents, the fault rate of the provider, and its PRNG seed. */
  docs: number;
  faultRate: number;
  seed: number;
  /** 4: rows, one in `poisonEvery` is poison. */
  poisonRows: number;
  poisonEvery: number;
  /** 5: rows, and leader kills with two and then three processes. */
  failoverRows: number;
  failoverKills: number;
  /** 6: queued runs, and the memory ceiling of the worker process. */
  backlog: number;
  maxRssMb: number;
  /** 6: the last fifth of the drain must complete at least this fraction of the first fifth's rate (default 0.5). */
  minRateRatio?: number;
  /** 7: seconds of a per-second schedule under kills (half with two processes, half with three; default 60). */
  scheduleSeconds?: number;
  /** Durable waits (wait-scenarios.ts): sleepers, runs waiting for signals, parents of 100 children each. */
  sleepers?: number;
  signalRuns?: number;
  parents?: number;
  /** 8: seconds of creating, altering and dropping SQL pipelines under kills (default 60). */
  sqlPipelineSeconds?: number;
  /** Multiplies how long loads are spread out (1 by default; the in-test variant goes faster). */
  timeScale?: number;
  /** Print progress to stderr. */
  log: (msg: string) => void;
}

export const FULL: Omit<ScenarioOptions, 'log'> = {
  killRows: 5_000, kills: 20,
  restartRows: 5_000, restarts: 4,
  docs: 1_000, faultRate: 0.25, seed: 7,
  poisonRows: 3_000, poisonEvery: 50,
  failoverRows: 4_000, failoverKills: 4,
  backlog: 200_000, maxRssMb: 512,
};

const P = 'chaos-counted';

function result(scenario: string, t0: number, inv: Invariants | undefined, extra: Partial<ScenarioResult>): ScenarioResult {
  const r: ScenarioResult = {
    scenario, faults: 0, faultDetail: '', rows: inv?.rows ?? 0, completed: inv?.completed ?? 0,
    failedExpected: inv?.failedExpected ?? 0, failedUnexpected: inv?.failedUnexpected ?? 0,
    lost: inv?.lost ?? 0, duplicated: inv?.duplicated ?? 0, stuck: inv?.stuck ?? 0, slotCaughtUp: null,
    seconds: 0, problems: [], metrics: {}, ...extra,
  };
  r.seconds = Math.round((Date.now() - t0) / 100) / 10;
  if (inv) {
    r.metrics = { changes: inv.changes, runs: inv.runs, superseded: inv.superseded, reexecuted: inv.reexecuted, ...inv.details, ...r.metrics };
    if (inv.lost) r.problems.push(`lost ${inv.lost} (${JSON.stringify(inv.details)})`);
    if (inv.duplicated) r.problems.push(`duplicated ${inv.duplicated} (${JSON.stringify(inv.details)})`);
    if (inv.stuck) r.problems.push(`${inv.stuck} run(s) stuck in queued/running/waiting`);
    if (inv.failedUnexpected) r.problems.push(`${inv.failedUnexpected} run(s) failed without an injected reason: ${inv.failures.join(' | ')}`);
    if (inv.reexecuted) r.problems.push(`${inv.reexecuted} step(s) started again after their checkpoint committed`);
  }
  if (r.slotCaughtUp === false) r.problems.push('the slot did not catch up with the last write');
  return r;
}

async function withCluster<T>(label: string, fn: (c: ChaosCluster) => Promise<T>): Promise<T> {
  const c = await startCluster(label);
  try {
    return await fn(c);
  } finally {
    await killAll();
    await c.destroy();
  }
}

/** SIGTERM (graceful stop) to every runner still alive, at once; each must exit 0. */
async function stopAll(runners: Runner[], problems: string[]): Promise<void> {
  await Promise.all(runners.filter((r) => r.alive()).map(async (r) => {
    await r.kill('SIGTERM');
    const { code } = await r.exited;
    if (code !== 0) problems.push(`walflow run (pid ${r.pid}) exited with ${code} on SIGTERM`);
  }));
}

// ---------------------------------------------------------------------------------------------
// 1. SIGKILL the runner at random moments while rows are inserted, updated and deleted.

export async function sigkillScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const t0 = Date.now();
  return withCluster('sigkill', async (c) => {
    await createCountedSchema(c.pool);
    let r = spawnWalflow(c, { only: P });
    await waitReady(r);
    const runners: Runner[] = [r];
    let loading = true;
    // About 1.6 s per kill cycle (start ~1 s, then up to 1.2 s of work): spread the load over the kills.
    const load = itemsLoad(c.url, { rows: o.killRows, durationMs: o.kills * 1_600 * (o.timeScale ?? 1), updatesPerRow: 0.6, deletesPerRow: 0.15 }).finally(() => (loading = false));
    let kills = 0;
    let beforeReady = 0;
    while (kills < o.kills || loading) {
      // Mostly while it works; sometimes while it is still starting (migrating, registering, taking the slot).
      const early = Math.random() < 0.2;
      if (!early) await r.ready.catch(() => undefined);
      await sleep(early ? Math.random() * 600 : 100 + Math.random() * 1_100);
      if (early && r.alive()) beforeReady += (await Promise.race([r.ready.then(() => 0, () => 0), sleep(0).then(() => 1)]));
      await r.kill('SIGKILL');
      kills++;
      r = spawnWalflow(c, { only: P });
      runners.push(r);
      if (kills % 5 === 0) o.log(`  sigkill: ${kills} kills, ${await num(c.pool, `SELECT count(*) AS n FROM walflow.runs`)} runs`);
    }
    const loadStats = await load;
    await waitReady(r);
    await settle(c.pool, P, 'chaos_items', 120_000);
    const slot = await slotCaughtUp(c.pool, 'walflow', P);
    const inv = await checkCounted(c.pool);
    const problems: string[] = [];
    await stopAll([r], problems);
    return result('1 SIGKILL runner', t0, inv, {
      faults: kills, faultDetail: `${kills} SIGKILL (${beforeReady} before ready)`, slotCaughtUp: slot.ok, problems,
      metrics: { transactions: loadStats.transactions },
    });
  });
}

// ---------------------------------------------------------------------------------------------
// 2. Restart PostgreSQL with -m immediate (a crash) several times mid-stream.

export async function pgRestartScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const t0 = Date.now();
  return withCluster('pgrestart', async (c) => {
    await createCountedSchema(c.pool);
    let r = spawnWalflow(c, { only: P });
    await waitReady(r);
    const runners = [r];
    const problems: string[] = [];
    const durationMs = (o.restarts + 1) * 6_000 * (o.timeScale ?? 1);
    const load = itemsLoad(c.url, { rows: o.restartRows, durationMs, updatesPerRow: 0.6, deletesPerRow: 0.15 });
    let restarts = 0;
    const downtimes: number[] = [];
    for (let i = 0; i < o.restarts; i++) {
      await sleep(durationMs / (o.restarts + 1) - 1_000 + Math.random() * 2_000);
      const t = Date.now();
      await c.cluster.restart('immediate');
      downtimes.push(Date.now() - t);
      restarts++;
      o.log(`  pg restart ${restarts}: back after ${Date.now() - t} ms`);
    }
    const loadStats = await load;
    if (!r.alive()) {
      problems.push(`walflow run died during the restarts: ${r.output().slice(-600)}`);
      r = spawnWalflow(c, { only: P });
      runners.push(r);
      await waitReady(r);
    }
    await settle(c.pool, P, 'chaos_items', 150_000);
    const slot = await slotCaughtUp(c.pool, 'walflow', P);
    const inv = await checkCounted(c.pool);
    await stopAll([r], problems);
    // Re-executions after a server crash are expected (at least once for steps whose checkpoint
    // commit was lost with the server); their ctx.tx effects still commit once (dupEffects).
    return result('2 PG restart -m immediate', t0, { ...inv, reexecuted: 0 }, {
      faults: restarts, faultDetail: `${restarts} immediate restarts (max ${Math.max(...downtimes)} ms down)`, slotCaughtUp: slot.ok, problems,
      metrics: { transactions: loadStats.transactions, failedTransactions: loadStats.failedTransactions, stepsReexecuted: inv.reexecuted },
    });
  });
}

// ---------------------------------------------------------------------------------------------
// 3. The OpenAI-compatible provider injecting faults; then `walflow retry --failed` once it is healthy.

const FAULTS: FaultSpec[] = [
  { kind: 'status', status: 429, retryAfter: 1 },
  { kind: 'status', status: 500 },
  { kind: 'hang' },
  { kind: 'truncated-json' },
  { kind: 'wrong-dimensions', dimensions: 5 },
];

/** The message of a run that failed for one of the injected reasons, by fault. */
const REASONS: [string, RegExp][] = [
  ['wrong-dimensions', /returned 5-dim vectors, expected 8/],
  ['429', /failed with 429/],
  ['500', /failed with 500/],
  ['hang', /timed out after \d+ ms/],
  ['truncated-json', /is not valid JSON/],
];

export interface EmbedCheck {
  docs: number;
  lost: number;
  duplicated: number;
  problems: string[];
}

/** Every document's current body is in the target as exactly its chunks, each with the model's vector for its text. */
export async function checkEmbeddings(pool: pg.Pool, dims = 8): Promise<EmbedCheck> {
  const docs = await q<{ id: number; body: string | null }>(pool, `SELECT id, body FROM chaos_docs ORDER BY id`);
  const rows = await q<{ source_key: string; chunk_index: number; chunk_text: string; content_hash: string; v: string; model: string }>(pool,
    `SELECT source_key, chunk_index, chunk_text, content_hash, embedding::text AS v, model FROM chaos_docs_embeddings ORDER BY source_key, chunk_index`);
  const byKey = new Map<string, typeof rows>();
  for (const r of rows) byKey.set(r.source_key, [...(byKey.get(r.source_key) ?? []), r]);
  const out: EmbedCheck = { docs: docs.length, lost: 0, duplicated: 0, problems: [] };
  for (const d of docs) {
    const want = await chunkText(d.body, estimateTokens, CHAOS_CHUNKING);
    const have = byKey.get(String(d.id)) ?? [];
    byKey.delete(String(d.id));
    if (have.length > want.length) out.duplicated += have.length - want.length;
    const bad = want.some((w, i) => {
      const h = have[i];
      if (!h || h.chunk_index !== w.index || h.chunk_text !== w.text || h.content_hash !== w.hash || h.model !== 'chaos-fake') return true;
      const v = fromPgVector(h.v);
      const e = fakeEmbedding(w.text, dims);
      return v.length !== dims || e.some((x, k) => Math.abs(x - v[k]!) > 1e-5);
    });
    if (bad || have.length < want.length) {
      out.lost++;
      if (out.problems.length < 3) out.problems.push(`doc ${d.id}: ${have.length} chunk(s) stored, ${want.length} expected${bad ? ' (or text/vector mismatch)' : ''}`);
    }
  }
  // Chunks of deleted documents: a delete that was not applied.
  for (const [key, have] of byKey) {
    out.lost++;
    if (out.problems.length < 3) out.problems.push(`deleted doc ${key} still has ${have.length} chunk(s)`);
  }
  return out;
}

export async function providerFaultsScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const t0 = Date.now();
  const secret = `sk-chaos-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  const server = await startFakeEmbeddingsServer({ dimensions: 8, apiKey: secret, chaos: { rate: o.faultRate, seed: o.seed, faults: FAULTS } });
  try {
    return await withCluster('provider', async (c) => {
      await createDocsSchema(c.pool);
      const env = { CHAOS_EMBED_URL: server.baseURL, CHAOS_API_KEY: secret, CHAOS_EMBED_TIMEOUT_MS: '1000' };
      const r = spawnWalflow(c, { only: 'chaos-embed', env, leaseMs: 10_000 });
      await waitReady(r);
      // Inserts, then new versions of a fifth of them and deletes of a twentieth.
      for (let id = 1; id <= o.docs; id += 50) {
        const ids = Array.from({ length: Math.min(50, o.docs - id + 1) }, (_, k) => id + k);
        await c.pool.query(`INSERT INTO chaos_docs (id, title, body) SELECT x, 'doc ' || x, b FROM unnest($1::int[], $2::text[]) AS t(x, b)`, [ids, ids.map((x) => docBody(x, 0))]);
      }
      for (let id = 5; id <= o.docs; id += 5) await c.pool.query(`UPDATE chaos_docs SET body = $2 WHERE id = $1`, [id, docBody(id, 1)]);
      for (let id = 20; id <= o.docs; id += 20) await c.pool.query(`DELETE FROM chaos_docs WHERE id = $1`, [id]);
      const settled = await settle(c.pool, 'chaos-embed', 'chaos_docs', 300_000);
      const problems: string[] = [];
      if (!settled) problems.push('runs did not all finish or fail while the provider was faulty');
      const failed = await q<{ msg: string }>(c.pool, `SELECT error->>'message' AS msg FROM walflow.runs WHERE pipeline = 'chaos-embed' AND status = 'failed'`);
      const byReason: Record<string, number> = {};
      const unexplained: string[] = [];
      for (const f of failed) {
        const reason = REASONS.find(([, re]) => re.test(f.msg ?? ''))?.[0];
        if (reason) byReason[reason] = (byReason[reason] ?? 0) + 1;
        else unexplained.push(f.msg);
      }
      if (unexplained.length) problems.push(`${unexplained.length} run(s) failed for a reason that was not injected: ${unexplained.slice(0, 3).join(' | ')}`);
      const faults: Record<string, number> = {};
      for (const req of server.requests) if (req.fault) {
        const k = req.fault === 'status' ? String(req.status ?? 'status') : req.fault;
        faults[k] = (faults[k] ?? 0) + 1;
      }
      const requestsWithChaos = server.requests.length;
      // The provider recovers; the operator re-queues what failed.
      server.setChaos(undefined);
      // (Exit status 3 with {"retried":0}: there was nothing to retry.)
      const { stdout } = await run(process.execPath, [path.join(ROOT, 'bin/walflow.js'), 'retry', '--failed', '--pipeline', 'chaos-embed', '--json'], { cwd: ROOT, env: walflowEnv(c) })
        .catch((err: { code?: number; stdout?: string; stderr?: string; message: string }) => {
          if (err.code === 3 && err.stdout?.includes('"retried"')) return { stdout: err.stdout };
          throw new Error(`walflow retry --failed failed: ${err.stderr || err.message}`);
        });
      const retried = (JSON.parse(stdout) as { retried: number }).retried;
      if (retried !== failed.length) problems.push(`walflow retry re-queued ${retried} of ${failed.length} failed runs`);
      if (!(await settle(c.pool, 'chaos-embed', 'chaos_docs', 120_000))) problems.push('retried runs did not finish');
      const slot = await slotCaughtUp(c.pool, 'walflow', 'chaos-embed');
      const st = Object.fromEntries((await q<{ status: string; n: string }>(c.pool, `SELECT status, count(*) AS n FROM walflow.runs WHERE pipeline = 'chaos-embed' GROUP BY 1`)).map((x) => [x.status, Number(x.n)]));
      if (st.failed) problems.push(`${st.failed} run(s) still failed after the provider recovered and walflow retry`);
      const starts = await num(c.pool, `SELECT abs((SELECT count(*) FROM chaos_audit WHERE tbl = 'chaos_docs') - (SELECT count(*) FROM walflow.runs WHERE pipeline = 'chaos-embed')) AS n`);
      const emb = await checkEmbeddings(c.pool);
      problems.push(...emb.problems);
      await stopAll([r], problems);
      const leaks = await secretLeaks(c.pool, secret, [r.logFile]);
      if (leaks.length) problems.push(`the API key leaked into ${leaks.join(', ')}`);
      const faultTotal = Object.values(faults).reduce((a, b) => a + b, 0);
      const res = result('3 provider faults', t0, undefined, {
        faults: faultTotal, faultDetail: Object.entries(faults).map(([k, v]) => `${v}×${k}`).join(' '),
        rows: emb.docs, completed: st.completed ?? 0, failedExpected: failed.length - unexplained.length, failedUnexpected: unexplained.length + (st.failed ?? 0),
        lost: emb.lost + starts, duplicated: emb.duplicated, stuck: (st.queued ?? 0) + (st.running ?? 0) + (st.waiting ?? 0), slotCaughtUp: slot.ok, problems,
        metrics: { requests: requestsWithChaos, retried, apiKeyLeaks: leaks.length, ...Object.fromEntries(Object.entries(byReason).map(([k, v]) => [`failed:${k}`, v])) },
      });
      if (res.lost) res.problems.push(`lost ${res.lost}`);
      if (res.duplicated) res.problems.push(`duplicated ${res.duplicated}`);
      if (res.stuck) res.problems.push(`${res.stuck} run(s) stuck`);
      return res;
    });
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Poison rows: a step throws for those rows only.

export async function poisonScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const t0 = Date.now();
  return withCluster('poison', async (c) => {
    await createCountedSchema(c.pool);
    const r = spawnWalflow(c, { only: P, env: { CHAOS_POISON: '1' } });
    await waitReady(r);
    const samples: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const rows = await q<{ c: string }>(c.pool, `SELECT confirmed_flush_lsn::text AS c FROM pg_replication_slots WHERE slot_name = 'walflow'`);
        if (rows[0] && rows[0].c !== samples.at(-1)) samples.push(rows[0].c);
        await sleep(200);
      }
    })();
    await itemsLoad(c.url, { rows: o.poisonRows, durationMs: 8_000 * (o.timeScale ?? 1), poisonEvery: o.poisonEvery, updatesPerRow: 0.5, deletesPerRow: 0.1 });
    await settle(c.pool, P, 'chaos_items', 120_000);
    const slot = await slotCaughtUp(c.pool, 'walflow', P);
    sampling = false;
    await sampler;
    const inv = await checkCounted(c.pool, { poisonEvery: o.poisonEvery });
    const problems: string[] = [];
    // The slot kept moving while poison runs were failing (not one jump at the end).
    if (samples.length < 5) problems.push(`the slot advanced only ${samples.length} times during the load`);
    const poisonKeys = await num(c.pool, `SELECT count(DISTINCT id) AS n FROM chaos_audit WHERE tbl = 'chaos_items' AND id % $1 = 0`, [o.poisonEvery]);
    // Every run that carried a poison row failed (or was superseded before it started: a newer
    // change of the row, e.g. its delete, replaced it); every other run completed.
    const poisonNotFailed = await num(c.pool, `SELECT count(*) AS n FROM walflow.runs WHERE pipeline = $1 AND input->'row'->>'body' LIKE 'poison%' AND status NOT IN ('failed', 'superseded')`, [P]);
    if (poisonNotFailed) problems.push(`${poisonNotFailed} run(s) of poison rows did not fail`);
    await stopAll([r], problems);
    return result('4 poison rows', t0, inv, {
      faults: poisonKeys, faultDetail: `${poisonKeys} poison rows (${inv.failedExpected} runs)`, slotCaughtUp: slot.ok, problems,
      metrics: { slotAdvances: samples.length },
    });
  });
}

// ---------------------------------------------------------------------------------------------
// 5. Two, then three runner processes; the leader is killed again and again.

export async function failoverScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const t0 = Date.now();
  return withCluster('failover', async (c) => {
    await createCountedSchema(c.pool);
    const problems: string[] = [];
    let runners: Runner[] = [spawnWalflow(c, { only: P }), spawnWalflow(c, { only: P })];
    await Promise.all(runners.map((r) => waitReady(r)));
    let maxSenders = 0;
    let maxLockHolders = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [s] = await q<{ senders: string; holders: string }>(c.pool, `
          SELECT (SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming') AS senders,
                 (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
                     AND ((classid::bigint << 32) | objid::bigint) = hashtextextended('walflow.replication:walflow', 0)) AS holders`);
        maxSenders = Math.max(maxSenders, Number(s!.senders));
        maxLockHolders = Math.max(maxLockHolders, Number(s!.holders));
        await sleep(50);
      }
    })();
    const load = itemsLoad(c.url, { rows: o.failoverRows, durationMs: o.failoverKills * 2 * 4_000 * (o.timeScale ?? 1), updatesPerRow: 0.5, deletesPerRow: 0.1 });
    const takeovers: number[] = [];
    let kills = 0;
    for (const size of [2, 3]) {
      while (runners.length < size) {
        const r = spawnWalflow(c, { only: P });
        runners.push(r);
        await waitReady(r);
      }
      for (let k = 0; k < o.failoverKills; k++) {
        let pid: number | undefined;
        const deadline = Date.now() + 30_000;
        while (!(pid = await leaderPid(c.pool)) && Date.now() < deadline) await sleep(50);
        const leader = runners.find((r) => r.pid === pid);
        if (!leader) {
          problems.push(`no leader among the runners (leader pid ${pid})`);
          break;
        }
        await sleep(500 + Math.random() * 1_500);
        const killedAt = Date.now();
        await leader.kill('SIGKILL');
        kills++;
        let next: number | undefined;
        while (Date.now() - killedAt < 30_000) {
          next = await leaderPid(c.pool);
          if (next && next !== pid) break;
          await sleep(25);
        }
        if (!next || next === pid) problems.push(`no standby took over within 30 s of killing leader ${pid}`);
        else takeovers.push(Date.now() - killedAt);
        runners = runners.filter((r) => r !== leader);
        const fresh = spawnWalflow(c, { only: P });
        runners.push(fresh);
        await waitReady(fresh);
      }
      o.log(`  failover: ${size} processes, ${kills} leader kills so far, takeovers ${takeovers.join(', ')} ms`);
    }
    await load;
    await settle(c.pool, P, 'chaos_items', 120_000);
    const slot = await slotCaughtUp(c.pool, 'walflow', P);
    sampling = false;
    await sampler;
    const inv = await checkCounted(c.pool);
    if (maxSenders > 1) problems.push(`${maxSenders} walsenders streamed at once`);
    if (maxLockHolders > 1) problems.push(`${maxLockHolders} processes held the leader lock at once`);
    const maxTakeover = Math.max(0, ...takeovers);
    if (maxTakeover > 10_000) problems.push(`a takeover took ${maxTakeover} ms`);
    await stopAll(runners, problems);
    return result('5 leader failover (2-3 procs)', t0, inv, {
      faults: kills, faultDetail: `${kills} leader SIGKILLs, takeover max ${(maxTakeover / 1000).toFixed(1)} s`, slotCaughtUp: slot.ok, problems,
      metrics: { maxTakeoverMs: maxTakeover, avgTakeoverMs: Math.round(takeovers.reduce((a, b) => a + b, 0) / Math.max(1, takeovers.length)), maxStreamingWalsenders: maxSenders, maxLockHolders },
    });
  });
}

// ---------------------------------------------------------------------------------------------
// 6. A backlog of queued runs while no worker runs, then workers: bounded memory, steady claims.

export async function backlogScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const t0 = Date.now();
  return withCluster('backlog', async (c) => {
    await createCountedSchema(c.pool);
    const problems: string[] = [];
    // A process with no workers registers the pipeline (and would take the slot, had it a source).
    const idle = spawnWalflow(c, { only: 'chaos-backlog', workers: 0 });
    await waitReady(idle);
    await stopAll([idle], problems);
    const tq = Date.now();
    const BATCH = 5_000;
    for (let n = 0; n < o.backlog; n += BATCH) {
      const items = Array.from({ length: Math.min(BATCH, o.backlog - n) }, (_, k) => ({ input: { n: n + k }, key: `b${n + k}` }));
      await c.pool.query(`SELECT count(*) FROM walflow.start_batch('chaos-backlog', $1::jsonb)`, [JSON.stringify(items)]);
    }
    const queueSeconds = (Date.now() - tq) / 1000;
    o.log(`  backlog: ${o.backlog} runs queued in ${queueSeconds.toFixed(1)} s`);
    await c.pool.query('VACUUM ANALYZE walflow.runs');
    const r = spawnWalflow(c, { only: 'chaos-backlog', leaseMs: 30_000 });
    await waitReady(r);
    const rss: number[] = [];
    let hwm = 0;
    const tDrain = Date.now();
    let last = -1;
    while (Date.now() - tDrain < Math.max(600_000, o.backlog * 5)) {
      const m = memoryOf(r.pid);
      if (m) {
        rss.push(m.rssMb);
        hwm = Math.max(hwm, m.hwmMb);
      }
      const left = await num(c.pool, `SELECT count(*) AS n FROM walflow.runs WHERE pipeline = 'chaos-backlog' AND status IN ('queued', 'running', 'waiting')`);
      if (left === 0) break;
      if (Math.floor(left / 50_000) !== last) {
        last = Math.floor(left / 50_000);
        o.log(`  backlog: ${left} left, rss ${m?.rssMb.toFixed(0)} MB`);
      }
      await sleep(250);
    }
    const drainSeconds = (Date.now() - tDrain) / 1000;
    const m = memoryOf(r.pid);
    if (m) hwm = Math.max(hwm, m.hwmMb);
    // Completion rate in the first and the last fifth of the drain, from the runs' own finish times.
    const [p] = await q<{ t0: number; t20: number; t80: number; t100: number }>(c.pool, `
      SELECT extract(epoch FROM x[1])::float8 AS t0, extract(epoch FROM x[2])::float8 AS t20,
             extract(epoch FROM x[3])::float8 AS t80, extract(epoch FROM x[4])::float8 AS t100
        FROM (SELECT percentile_disc(ARRAY[0, 0.2, 0.8, 1]) WITHIN GROUP (ORDER BY finished_at) AS x
                FROM walflow.runs WHERE pipeline = 'chaos-backlog' AND status = 'completed') s`);
    const fifth = o.backlog * 0.2;
    const firstRate = fifth / Math.max(0.001, p!.t20 - p!.t0);
    const lastRate = fifth / Math.max(0.001, p!.t100 - p!.t80);
    const st = Object.fromEntries((await q<{ status: string; n: string }>(c.pool, `SELECT status, count(*) AS n FROM walflow.runs WHERE pipeline = 'chaos-backlog' GROUP BY 1`)).map((x) => [x.status, Number(x.n)]));
    const effects = await num(c.pool, `SELECT count(*) AS n FROM chaos_effects WHERE op = 'backlog'`);
    const distinct = await num(c.pool, `SELECT count(DISTINCT run_id) AS n FROM chaos_effects WHERE op = 'backlog'`);
    const completed = st.completed ?? 0;
    const lost = o.backlog - Math.min(completed, distinct);
    const duplicated = effects - distinct;
    if (hwm > o.maxRssMb) problems.push(`worker peak RSS ${hwm.toFixed(0)} MB > ${o.maxRssMb} MB`);
    if (lastRate < firstRate * (o.minRateRatio ?? 0.5)) problems.push(`claim rate collapsed: ${lastRate.toFixed(0)}/s in the last fifth vs ${firstRate.toFixed(0)}/s in the first`);
    await stopAll([r], problems);
    const res = result('6 backlog drain', t0, undefined, {
      faults: 0, faultDetail: `${o.backlog} queued, workers started late`, rows: o.backlog, completed,
      failedUnexpected: st.failed ?? 0, lost, duplicated, stuck: (st.queued ?? 0) + (st.running ?? 0) + (st.waiting ?? 0), problems,
      metrics: {
        queueSeconds: Math.round(queueSeconds), drainSeconds: Math.round(drainSeconds), runsPerSecond: Math.round(o.backlog / drainSeconds),
        firstFifthPerSecond: Math.round(firstRate), lastFifthPerSecond: Math.round(lastRate),
        peakRssMb: Math.round(hwm), rssAtStartMb: Math.round(rss[0] ?? 0), rssAtEndMb: Math.round(rss.at(-1) ?? 0),
      },
    });
    if (lost) res.problems.push(`lost ${lost}`);
    if (duplicated) res.problems.push(`duplicated ${duplicated}`);
    if (res.stuck) res.problems.push(`${res.stuck} stuck`);
    if (res.failedUnexpected) res.problems.push(`${res.failedUnexpected} failed`);
    return res;
  });
}

// ---------------------------------------------------------------------------------------------
// 7. A per-second schedule (no leader: every process fires) under SIGKILLs, with two and then three
// processes: each tick between the first and the last seen has exactly one run, each run's effect
// committed once, counted against the clock.

const TICKS = 'chaos-ticks';

export async function scheduleScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const t0 = Date.now();
  return withCluster('schedule', async (c) => {
    await c.pool.query('CREATE TABLE chaos_ticks (tick text NOT NULL, run_id uuid NOT NULL)');
    const problems: string[] = [];
    let runners: Runner[] = [spawnWalflow(c, { only: TICKS }), spawnWalflow(c, { only: TICKS })];
    await Promise.all(runners.map((r) => waitReady(r)));
    const phaseMs = ((o.scheduleSeconds ?? 60) * 1000) / 2;
    let kills = 0;
    for (const size of [2, 3]) {
      while (runners.length < size) {
        const r = spawnWalflow(c, { only: TICKS });
        runners.push(r);
        await waitReady(r);
      }
      const until = Date.now() + phaseMs;
      while (Date.now() < until) {
        await sleep(1_000 + Math.random() * 3_000);
        // Any process may be firing a tick or running a tick's step at this moment.
        const victim = runners[Math.floor(Math.random() * runners.length)]!;
        await victim.kill('SIGKILL');
        kills++;
        runners = runners.filter((r) => r !== victim);
        const fresh = spawnWalflow(c, { only: TICKS });
        runners.push(fresh);
        await waitReady(fresh);
      }
      o.log(`  schedule: ${size} processes, ${kills} SIGKILLs so far`);
    }
    // Every run started so far completes (a killed process's runs come back when their lease expires).
    const endTick = (await q<{ t: Date }>(c.pool, `SELECT max((input->>'tick')::timestamptz) AS t FROM walflow.runs WHERE pipeline = $1`, [TICKS]))[0]!.t;
    const deadline = Date.now() + 60_000;
    const open = () => num(c.pool, `SELECT count(*) FROM walflow.runs WHERE pipeline = $1 AND status <> 'completed' AND (input->>'tick')::timestamptz <= $2`, [TICKS, endTick]);
    while ((await open()) > 0 && Date.now() < deadline) await sleep(250);
    const stuck = await open();
    await stopAll(runners, problems);
    const [t] = await q<{ first: Date; last: Date; runs: string; ticks: string; doubled: string; effects: string; missing_effects: string; doubled_effects: string; late_p50: number; late_p99: number; late_max: number }>(c.pool, `
      WITH r AS (SELECT (input->>'tick')::timestamptz AS tick, created_at FROM walflow.runs WHERE pipeline = $1 AND (input->>'tick')::timestamptz <= $2)
      SELECT min(tick) AS first, max(tick) AS last, count(*) AS runs, count(DISTINCT tick) AS ticks,
             (SELECT count(*) FROM (SELECT tick FROM r GROUP BY tick HAVING count(*) > 1) d) AS doubled,
             (SELECT count(*) FROM chaos_ticks WHERE tick::timestamptz <= $2) AS effects,
             (SELECT count(DISTINCT r2.tick) FROM r r2 WHERE NOT EXISTS (SELECT 1 FROM chaos_ticks e WHERE e.tick::timestamptz = r2.tick)) AS missing_effects,
             (SELECT count(*) FROM (SELECT tick FROM chaos_ticks GROUP BY tick HAVING count(*) > 1) d) AS doubled_effects,
             percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM created_at - tick) * 1000) AS late_p50,
             percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM created_at - tick) * 1000) AS late_p99,
             max(extract(epoch FROM created_at - tick) * 1000)::float8 AS late_max
        FROM r`, [TICKS, endTick]);
    const expected = Math.round((t!.last.getTime() - t!.first.getTime()) / 1000) + 1;
    const seen = Number(t!.ticks);
    const lost = Math.max(0, expected - seen) + Number(t!.missing_effects);
    const doubled = Number(t!.runs) - seen + Number(t!.doubled_effects);
    if (lost) problems.push(`lost ${lost} tick(s): expected ${expected}, runs for ${seen}, ${t!.missing_effects} run(s) without their effect`);
    if (doubled) problems.push(`doubled ${doubled} tick(s): ${Number(t!.runs) - seen} extra runs, ${t!.doubled_effects} ticks with two effects`);
    if (stuck) problems.push(`${stuck} tick run(s) not completed 60 s after the kills ended`);
    if (expected < (o.scheduleSeconds ?? 60) - 5) problems.push(`only ${expected} ticks in a ${o.scheduleSeconds ?? 60} s run`);
    return result('schedule-per-second-under-kills', t0, undefined, {
      faults: kills, faultDetail: `${kills} SIGKILLs of 2-3 processes`, rows: expected, completed: Number(t!.effects), lost, duplicated: doubled, stuck, problems,
      metrics: {
        ticksExpected: expected, ticksSeen: seen, ticksLost: lost, ticksDoubled: doubled,
        lateP50Ms: Math.round(t!.late_p50), lateP99Ms: Math.round(t!.late_p99), lateMaxMs: Math.round(t!.late_max),
      },
    });
  });
}

export const SCENARIOS: Record<string, (o: ScenarioOptions) => Promise<ScenarioResult>> = {
  sigkill: sigkillScenario,
  'pg-restart': pgRestartScenario,
  provider: providerFaultsScenario,
  poison: poisonScenario,
  failover: failoverScenario,
  backlog: backlogScenario,
  'schedule-per-second-under-kills': scheduleScenario,
  'sleepers-across-kills-and-pg-restart': sleepersScenario,
  'signals-under-kills': signalsScenario,
  'children-under-kills': childrenScenario,
  'sql-pipelines-created-and-dropped-under-kills': sqlPipelinesScenario,
};

