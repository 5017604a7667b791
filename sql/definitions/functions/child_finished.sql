-- walflow.child_finished(): trigger on walflow.runs (definitions/defaults/runs_child_trigger.sql).
-- When a child run ends (completed, failed, cancelled, superseded), its parent's wait counts it, and
-- the parent is made due when its join can decide: every child ended; for a race, one completed;
-- for a join that fails on a failed child, one failed. The parent decides itself when it runs.
CREATE OR REPLACE FUNCTION walflow.child_finished() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_left integer;
  v_mode text;
  v_pipeline text;
BEGIN
  -- The parent's row first: a parent deciding its join holds it (src/engine/child-runs.ts), so this
  -- child's end waits for that decision to commit and then counts against the wait it left — never
  -- against an old one while the parent, still running, cannot be woken. Locks go child, then
  -- parent, everywhere (walflow.cancel_tree locks a tree deepest first).
  PERFORM 1 FROM walflow.runs r WHERE r.id = NEW.parent_run_id FOR NO KEY UPDATE;
  UPDATE walflow.waits w SET children_left = greatest(w.children_left - 1, 0)
   WHERE w.run_id = NEW.parent_run_id AND w.step_index = NEW.parent_step_index AND w.kind = 'children'
  RETURNING w.children_left, w.mode, w.pipeline INTO v_left, v_mode, v_pipeline;
  IF FOUND AND (v_left = 0
                OR (v_mode LIKE 'race/%' AND NEW.status = 'completed')
                OR (v_mode = 'all/fail' AND NEW.status <> 'completed')) THEN
    UPDATE walflow.runs r SET run_at = now(), updated_at = now() WHERE r.id = NEW.parent_run_id AND r.status = 'waiting';
    IF FOUND THEN
      PERFORM pg_notify('walflow_runs', v_pipeline);
    END IF;
  END IF;
  RETURN NULL;
END;
$$;
