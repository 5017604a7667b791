-- walflow.list_runs(...): runs newest first, exactly: by the millisecond in the run's id (uuid v7), then by start order
-- (seq) within it. The page is read from the primary key in id order (fast however many finished
-- runs there are); only the page's last millisecond, which the limit may cut in id order rather
-- than start order, is read whole and re-sorted. p_before (a page's last id) continues after that
-- run. steps_done: committed checkpoints; current_step: the step the run is executing, parked in,
-- waiting to retry, failed or cancelled at — by name, in the loaded version: the step after its last
-- checkpoint's (docs/waits.md, "Runs meet new versions"); NULL once completed or superseded.
CREATE OR REPLACE FUNCTION walflow.list_runs(
  p_pipeline text DEFAULT NULL, p_status text DEFAULT NULL, p_key text DEFAULT NULL,
  p_before uuid DEFAULT NULL, p_limit integer DEFAULT 50)
RETURNS TABLE (id uuid, pipeline text, key text, status text, steps_done integer, current_step text,
               attempt integer, created_at timestamptz, finished_at timestamptz, error_message text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_limit integer := least(greatest(coalesce(p_limit, 50), 1), 10000);
  v_ms    text;
  v_seq   bigint;
  v_where text := 'true';
BEGIN
  IF p_pipeline IS NOT NULL THEN v_where := v_where || ' AND r.pipeline = $1'; END IF;
  IF p_status IS NOT NULL THEN v_where := v_where || ' AND r.status = $2'; END IF;
  IF p_key IS NOT NULL THEN v_where := v_where || ' AND r.key = $3'; END IF;
  IF p_before IS NOT NULL THEN
    SELECT b.seq INTO v_seq FROM walflow.runs b WHERE b.id = p_before;
    v_ms := left(p_before::text, 13);
    IF v_seq IS NULL THEN
      -- That run was pruned meanwhile: its id still places it, to the millisecond.
      v_where := v_where || ' AND r.id < $4';
    ELSE
      v_where := v_where || format(' AND r.id <= %L::uuid AND (r.id < %L::uuid OR r.seq < %s)',
                                   v_ms || '-ffff-ffff-ffffffffffff', v_ms || '-0000-0000-000000000000', v_seq);
    END IF;
  END IF;
  -- Built per call (EXECUTE), so that each call gets a plan for the filters it actually has. The
  -- candidates carry their columns: joining them back to runs lets the planner misjudge their
  -- number and sort the whole table.
  RETURN QUERY EXECUTE format($q$
    WITH page AS MATERIALIZED (
      SELECT %2$s FROM walflow.runs r WHERE %1$s ORDER BY r.id DESC LIMIT $5
    ), edge AS (
      SELECT left(min(p.id::text COLLATE "C"), 13) AS ms FROM page p HAVING count(*) = $5
    ), picked AS MATERIALIZED (
      SELECT * FROM page
      UNION
      SELECT %2$s FROM walflow.runs r, edge e
       WHERE r.id >= (e.ms || '-0000-0000-000000000000')::uuid
         AND r.id <= (e.ms || '-ffff-ffff-ffffffffffff')::uuid AND %1$s
    )
    SELECT c.id, c.pipeline, c.key, c.status, d.n,
           CASE WHEN c.status IN ('completed', 'superseded') THEN NULL
                ELSE coalesce(w.step, CASE WHEN d.last IS NULL THEN pl.steps[1] ELSE pl.steps[array_position(pl.steps, d.last) + 1] END) END,
           CASE WHEN d.n = c.step_index THEN c.attempt WHEN c.status = 'running' THEN 1 ELSE 0 END,
           c.created_at, c.finished_at, c.error_message
      FROM (SELECT * FROM picked ORDER BY left(id::text, 13) COLLATE "C" DESC, seq DESC LIMIT $5) c
      LEFT JOIN walflow.pipelines pl ON pl.name = c.pipeline
      LEFT JOIN walflow.waits w ON w.run_id = c.id AND c.status = 'waiting'
      CROSS JOIN LATERAL (SELECT count(*)::integer AS n, (array_agg(s.step ORDER BY s.step_index DESC))[1] AS last
                            FROM walflow.steps s WHERE s.run_id = c.id) d
     ORDER BY left(c.id::text, 13) COLLATE "C" DESC, c.seq DESC$q$, v_where,
     'r.id, r.seq, r.pipeline, r.key, r.status, r.step_index, r.attempt, r.created_at, r.finished_at, r.error->>''message'' AS error_message')
  USING p_pipeline, p_status, p_key, p_before, v_limit;
END;
$$;
