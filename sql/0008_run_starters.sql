-- Authorization of the SQL API: an application role touches only the runs it started.
--
-- Before this, any role with USAGE on schema walflow could call walflow.start(p, input, 'some-key')
-- and supersede another principal's queued run of that key (a WAL-started run could thus be
-- suppressed, and replaced by forged input), and learn another principal's run id by guessing its
-- dedupe id. Now every run records who started it, and latest-wins and dedupe apply only among runs
-- of the same starter.
--
-- Who the caller is: inside a SECURITY DEFINER function current_user is walflow's owner, so the
-- caller is the role it acts as in its session: the role of its SET ROLE if any (PostgreSQL only
-- lets a session SET ROLE to a role it is a member of), else its login role (session_user). A
-- pooler that logs in as one role and SET ROLEs per client therefore separates its clients'
-- principals; one that does not shares a single principal among all of them.
--
-- walflow itself is one principal, stored as started_by NULL: the replication writer (a plain
-- INSERT, the column default: nothing added per row to that hot path), backfill and the replay path
-- through start_batch, and any role that may write walflow.runs directly (INSERT on it: the owner,
-- the worker and replication roles, superusers). Such a role could write any run anyway, so treating
-- it as walflow grants it nothing new. Only walflow's principal supersedes WAL-started runs.
ALTER TABLE walflow.runs ADD COLUMN started_by text;
COMMENT ON COLUMN walflow.runs.started_by IS
  'The role that started the run from SQL (its SET ROLE, else its login role); NULL: walflow itself (WAL, backfill) or a role with INSERT on walflow.runs';

-- Who may start a pipeline's runs from SQL (members of these roles); NULL: any role with USAGE on
-- schema walflow; an empty list: walflow's own principal only. Set from the definition's startRoles.
ALTER TABLE walflow.pipelines ADD COLUMN start_roles text[];

-- Dedupe ids are per starter: a role never gets, nor learns of, another principal's run by its id.
-- The same name, so nothing that names the index changes; a replay of a WAL change still fails the
-- replication writer's plain INSERT with a unique violation.
DROP INDEX walflow.runs_dedupe;
CREATE UNIQUE INDEX runs_dedupe ON walflow.runs (pipeline, dedupe_id, (coalesce(started_by, ''))) WHERE dedupe_id IS NOT NULL;

-- The role the caller acts as (see above). 'none' is what PostgreSQL reports without SET ROLE, and
-- cannot be a role's name.
CREATE FUNCTION walflow.caller_role() RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE pg_catalog.current_setting('role') WHEN 'none' THEN session_user::text ELSE pg_catalog.current_setting('role') END
$$;

-- The caller as a starter of runs: NULL when it is walflow's own principal, else its role.
CREATE FUNCTION walflow.caller_starter() RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN pg_catalog.has_table_privilege(walflow.caller_role(), 'walflow.runs', 'INSERT') THEN NULL
              ELSE walflow.caller_role() END
$$;

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
  v_key      text;
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

  -- Keys that may have an older run of this starter to supersede: repeated in this batch, or with an
  -- unfinished run already. (Scalar subqueries and per-key statements keep every lookup an index
  -- probe, whatever the table statistics say.)
  SELECT coalesce(array_agg(x.k), '{}') INTO v_keys
    FROM (SELECT e->>'key' AS k, count(*) AS n FROM jsonb_array_elements(p_items) e WHERE e ? 'key' GROUP BY 1) x
   WHERE x.n > 1 OR (SELECT 1 FROM walflow.runs o
                      WHERE o.key = x.k AND o.pipeline = p_pipeline AND o.status IN ('queued', 'waiting', 'running')
                        AND o.started_by IS NOT DISTINCT FROM v_starter
                      LIMIT 1) IS NOT NULL;
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

  -- Latest wins, among this starter's runs only.
  FOREACH v_key IN ARRAY v_keys LOOP
    UPDATE walflow.runs o
       SET status = 'superseded', finished_at = now(), updated_at = now()
     WHERE o.key = v_key AND o.pipeline = p_pipeline
       AND o.status = 'queued' AND o.started_at IS NULL
       AND o.started_by IS NOT DISTINCT FROM v_starter
       AND o.seq < (SELECT max(n.seq) FROM walflow.runs n
                     WHERE n.key = v_key AND n.pipeline = p_pipeline AND n.status IN ('queued', 'waiting', 'running')
                       AND n.started_by IS NOT DISTINCT FROM v_starter);
  END LOOP;

  PERFORM pg_notify('walflow_runs', p_pipeline);
END;
$$;

CREATE OR REPLACE FUNCTION walflow.start(pipeline text, input jsonb, key text DEFAULT NULL, dedupe_id text DEFAULT NULL)
RETURNS uuid LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_id uuid;
BEGIN
  IF input IS NULL THEN
    RAISE EXCEPTION 'walflow: input must not be NULL (use ''{}''::jsonb for no input)' USING ERRCODE = 'WF002';
  END IF;
  IF jsonb_typeof(input) <> 'object' THEN
    RAISE EXCEPTION 'walflow: input must be a JSON object, not % (wrap it: {"value": ...}; use ''{}'' for no input)', jsonb_typeof(input)
      USING ERRCODE = 'WF002';
  END IF;
  SELECT b.run_id INTO v_id
  FROM walflow.start_batch(pipeline, jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('input', input, 'key', key, 'dedupe_id', dedupe_id)))) b
  LIMIT 1;
  RETURN v_id;
END;
$$;

-- status, result and cancel run with the owner's rights for a caller that started the run (or is
-- walflow's principal). A run the caller may not see is reported exactly like one that does not
-- exist (WF003), so its existence is not revealed either.
CREATE OR REPLACE FUNCTION walflow.status(run uuid) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_starter text := walflow.caller_starter();
  v_status  text;
BEGIN
  SELECT r.status INTO v_status FROM walflow.runs r
   WHERE r.id = run AND (v_starter IS NULL OR r.started_by = v_starter);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'walflow: no run %', run USING ERRCODE = 'WF003';
  END IF;
  RETURN v_status;
END;
$$;

-- The output of the last step of a completed run; NULL while it is not completed.
CREATE OR REPLACE FUNCTION walflow.result(run uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_starter text := walflow.caller_starter();
  v_status  text;
BEGIN
  SELECT r.status INTO v_status FROM walflow.runs r
   WHERE r.id = run AND (v_starter IS NULL OR r.started_by = v_starter);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'walflow: no run %', run USING ERRCODE = 'WF003';
  END IF;
  IF v_status <> 'completed' THEN
    RETURN NULL;
  END IF;
  RETURN (SELECT s.output FROM walflow.steps s WHERE s.run_id = run ORDER BY s.step_index DESC LIMIT 1);
END;
$$;

CREATE OR REPLACE FUNCTION walflow.cancel(run uuid) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_starter text := walflow.caller_starter();
  v_status  text;
BEGIN
  SELECT r.status INTO v_status FROM walflow.runs r
   WHERE r.id = run AND (v_starter IS NULL OR r.started_by = v_starter) FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'walflow: no run %', run USING ERRCODE = 'WF003';
  END IF;
  IF v_status NOT IN ('queued', 'waiting', 'running') THEN
    RETURN false;
  END IF;
  UPDATE walflow.runs SET status = 'cancelled', finished_at = now(), updated_at = now(), lease_owner = NULL, lease_expires_at = NULL
   WHERE id = run;
  IF v_status = 'running' THEN
    INSERT INTO walflow.cancelled_running (run_id) VALUES (run)
    ON CONFLICT (run_id) DO UPDATE SET cancelled_at = now();
    PERFORM pg_notify('walflow_cancel', run::text);
  END IF;
  RETURN true;
END;
$$;
