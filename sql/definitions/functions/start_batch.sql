-- walflow.start_batch(pipeline, items): starts a batch of runs for one pipeline, inside the caller's
-- transaction. items: [{"input": {...}, "key": "...", "dedupe_id": "...", "source_lsn": "0/16B3748",
-- "source_index": 0}, ...]. Idempotent on dedupe_id; a newer start for a key whose run has not begun
-- supersedes it. Sends one NOTIFY walflow_runs per batch. Dedupe and latest-wins apply only among runs
-- of the same starter (runs.started_by; walflow's own principal is NULL), and a pipeline's
-- start_roles limit who may start it (docs/guarantees.md, "Authorization").
-- Runs with the privileges of walflow's owner (the role that migrates) and a pinned search path, so
-- an application role that starts runs needs only USAGE on schema walflow and no table privileges:
-- it cannot read other runs' inputs, change their status or touch checkpoints, and nothing in the
-- caller's search path can stand in for an object this function uses.
CREATE OR REPLACE FUNCTION walflow.start_batch(p_pipeline text, p_items jsonb)
RETURNS TABLE (run_id uuid, ordinal integer, created boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_version  text;
  v_roles    text[];
  v_role     text := walflow.caller_role();
  v_starter  text := walflow.caller_starter();
  v_keys     text[];
  v_dedupes  text[];
BEGIN
  SELECT p.version, p.start_roles INTO v_version, v_roles FROM walflow.pipelines p WHERE p.name = p_pipeline;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'walflow: unknown pipeline "%"', p_pipeline
      USING ERRCODE = 'WF001', HINT = 'Pipelines are registered when a walflow worker that loads them starts; see SELECT name FROM walflow.pipelines.';
  END IF;
  IF v_starter IS NOT NULL AND v_roles IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM unnest(v_roles) AS s(r) JOIN pg_roles g ON g.rolname = s.r WHERE pg_has_role(v_role, g.oid, 'MEMBER')) THEN
    RAISE EXCEPTION 'walflow: role "%" may not start runs of pipeline "%"', v_role, p_pipeline
      USING ERRCODE = '42501', HINT = format('The pipeline''s startRoles allows %s: grant one of them to the role, or add it to startRoles.',
                                             CASE WHEN cardinality(v_roles) = 0 THEN 'only walflow itself' ELSE array_to_string(v_roles, ', ') END);
  END IF;
  IF p_items IS NULL OR jsonb_typeof(p_items) <> 'array' THEN
    RAISE EXCEPTION 'walflow: items must be a JSON array of objects' USING ERRCODE = 'WF002';
  END IF;
  IF EXISTS (SELECT 1 FROM jsonb_array_elements(p_items) e
             WHERE jsonb_typeof(e) <> 'object' OR NOT e ? 'input' OR jsonb_typeof(e->'input') <> 'object') THEN
    RAISE EXCEPTION 'walflow: every item needs an "input" that is a JSON object'
      USING ERRCODE = 'WF002', HINT = 'Wrap other values: {"value": 42}; use {} for no input.';
  END IF;
  -- A WAL position is walflow's to record; from anyone else it would pass a run off as a change.
  IF v_starter IS NOT NULL AND EXISTS (SELECT 1 FROM jsonb_array_elements(p_items) e WHERE e ? 'source_lsn' OR e ? 'source_index') THEN
    RAISE EXCEPTION 'walflow: source_lsn and source_index are recorded by walflow itself, not by role "%"', v_role USING ERRCODE = 'WF002';
  END IF;

  -- Latest wins, in two halves shared with the replication writer: the keys that may leave an
  -- older run of this starter to supersede (looked up before the insert), then the supersede.
  v_keys := walflow.contested_keys(p_pipeline, ARRAY(SELECT e->>'key' FROM jsonb_array_elements(p_items) e), v_starter);
  SELECT coalesce(array_agg(e->>'dedupe_id') FILTER (WHERE e ? 'dedupe_id'), '{}') INTO v_dedupes
    FROM jsonb_array_elements(p_items) e;

  RETURN QUERY
  WITH items AS MATERIALIZED (
    SELECT walflow.uuid_v7() AS new_id, (i.ordinality - 1)::integer AS ord, i.value AS item
    FROM jsonb_array_elements(p_items) WITH ORDINALITY AS i
  ), existing AS MATERIALIZED (
    SELECT r.id, r.dedupe_id FROM walflow.runs r
    WHERE cardinality(v_dedupes) > 0 AND r.pipeline = p_pipeline AND r.dedupe_id = ANY(v_dedupes)
      AND coalesce(r.started_by, '') = coalesce(v_starter, '')
  ), inserted AS (
    INSERT INTO walflow.runs AS r (id, pipeline, pipeline_version, key, input, dedupe_id, source_lsn, source_index, started_by)
    SELECT it.new_id, p_pipeline, v_version, it.item->>'key', it.item->'input', it.item->>'dedupe_id',
           (it.item->>'source_lsn')::pg_lsn, (it.item->>'source_index')::integer, v_starter
    FROM items it ORDER BY it.ord
    ON CONFLICT (pipeline, dedupe_id, (coalesce(started_by, ''))) WHERE dedupe_id IS NOT NULL DO NOTHING
    RETURNING r.id
  )
  SELECT it.new_id, it.ord, true FROM items it JOIN inserted ins ON ins.id = it.new_id
  UNION ALL
  SELECT ex.id, it.ord, false
  FROM items it JOIN existing ex ON ex.dedupe_id = it.item->>'dedupe_id';

  IF cardinality(v_keys) > 0 THEN
    PERFORM walflow.supersede(p_pipeline, v_keys, v_starter);
  END IF;

  PERFORM pg_notify('walflow_runs', p_pipeline);
END;
$$;
