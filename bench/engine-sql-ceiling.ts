// The engine's SQL with a free client: the claim and checkpoint statements walflow's workers send,
// looped inside the server (a DO block, one transaction per statement as in a worker) by two
// connections, with no Node process in the way. bench:engine reports it next to walflow's own
// figure: the distance between them is what the client side costs; the ceiling itself is what
// the durable bookkeeping costs on this machine.
import { CHECKPOINT_FAST_SQL } from '../src/engine/sql/checkpoint.js';
import { CLAIM_SQL } from '../src/engine/sql/claim.js';
import { connectClients } from './harness.js';

/** Replaces $1..$n by SQL expressions; throws if one is missing (the statement changed shape). */
function inline(sql: string, params: string[]): string {
  let out = sql;
  for (let i = params.length; i >= 1; i--) {
    const re = new RegExp(`\\$${i}(?![0-9])`, 'g');
    if (!re.test(out)) throw new Error(`engine SQL ceiling: $${i} not found in statement`);
    out = out.replace(re, params[i - 1]!);
  }
  return out;
}

function loopSql(pipeline: string, steps: number, batch: number): string {
  const claim = inline(CLAIM_SQL, [`'${pipeline}'`, String(batch), `'ceiling-' || pg_backend_pid()`, '60000']);
  const n = 'cardinality(ids)';
  const checkpoint = inline(CHECKPOINT_FAST_SQL, [
    'ids', `array_fill(s, ARRAY[${n}])`, `array_fill('step'::text, ARRAY[${n}])`, 'outs',
    `array_fill(1, ARRAY[${n}])`, `array_fill(0, ARRAY[${n}])`, `array_fill(s = ${steps - 1}, ARRAY[${n}])`,
  ]);
  // PL/pgSQL needs a destination for the fenced ids the statement returns.
  const tail = 'SELECT d.run_id FROM d';
  if (!checkpoint.includes(tail)) throw new Error('engine SQL ceiling: checkpoint statement changed shape');
  return `DO $ceiling$
DECLARE ids uuid[]; outs jsonb; fenced int;
BEGIN
  LOOP
    WITH claimed AS (${claim}) SELECT array_agg(id) INTO ids FROM claimed;
    COMMIT;
    EXIT WHEN ids IS NULL;
    SELECT jsonb_agg('{"ok": true}'::jsonb) INTO outs FROM generate_series(1, ${n});
    FOR s IN 0..${steps - 1} LOOP
      ${checkpoint.replace(tail, 'SELECT count(*) INTO fenced FROM d')};
      COMMIT;
    END LOOP;
  END LOOP;
END $ceiling$`;
}

/** Drains every queued run of `pipeline` through the engine's SQL alone; returns runs per second. */
export async function engineSqlCeiling(url: string, pipeline: string, runs: number, steps: number): Promise<number> {
  const sql = loopSql(pipeline, steps, 1000);
  const clients = await connectClients(url, 2);
  try {
    const t0 = performance.now();
    await Promise.all(clients.map((c) => c.query(sql)));
    const ms = performance.now() - t0;
    const { rows } = await clients[0]!.query<{ n: number }>(`SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline = $1 AND status <> 'completed'`, [pipeline]);
    if (rows[0]!.n > 0) throw new Error(`engine SQL ceiling: ${rows[0]!.n} runs left unfinished`);
    return (runs / ms) * 1000;
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}
