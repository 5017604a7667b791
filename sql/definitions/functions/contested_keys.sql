-- walflow.contested_keys(pipeline, keys, starter): the keys of a batch about to be started that may
-- leave an older run of this starter to supersede: repeated in the batch, or with an unfinished run
-- already. Half of the latest-wins rule (walflow.supersede is the other half); both start paths call
-- it before they insert: walflow.start_batch, and the replication writer's INSERT statement
-- (src/engine/fast-start.ts), where it sees the table as it was before that statement.
-- The look-up is a scalar subquery per key, not EXISTS: the planner may turn EXISTS into a hashed
-- subplan that reads the whole table, and does so when statistics of a fast-growing table are stale.
-- SQL and STABLE, with no SET clause, so that it is inlined into the statement that calls it.
CREATE OR REPLACE FUNCTION walflow.contested_keys(p_pipeline text, p_keys text[], p_starter text)
RETURNS text[] LANGUAGE sql STABLE AS $$
  SELECT coalesce(pg_catalog.array_agg(x.k), '{}')
    FROM (SELECT k, pg_catalog.count(*) AS n FROM pg_catalog.unnest(p_keys) AS k WHERE k IS NOT NULL GROUP BY k) x
   WHERE x.n > 1 OR (SELECT 1 FROM walflow.runs o
                      WHERE o.key = x.k AND o.pipeline = p_pipeline AND o.status IN ('queued', 'waiting', 'running')
                        AND o.started_by IS NOT DISTINCT FROM p_starter
                      LIMIT 1) IS NOT NULL
$$;
