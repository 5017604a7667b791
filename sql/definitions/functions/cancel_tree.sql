-- walflow.cancel_tree(run): cancels a run and its unfinished descendants (child runs started by its
-- children steps, and theirs), whoever started them. Internal: walflow.cancel checks the caller
-- first, and a parent's join or race cancels the children it no longer needs. Not granted to anyone.
-- Returns how many runs it cancelled.
CREATE OR REPLACE FUNCTION walflow.cancel_tree(run uuid) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_n   integer := 0;
  v_id  uuid;
  v_was text;
BEGIN
  FOR v_id, v_was IN
    WITH RECURSIVE tree AS (
      SELECT r.id, 0 AS depth FROM walflow.runs r WHERE r.id = run
      UNION ALL
      SELECT c.id, t.depth + 1 FROM walflow.runs c JOIN tree t ON c.parent_run_id = t.id
    )
    -- Deepest first, then by id: a child's end locks the child, then its parent
    -- (child_finished.sql); locking in the same direction cannot deadlock with it.
    SELECT r.id, r.status FROM walflow.runs r JOIN tree t ON t.id = r.id
     WHERE r.status IN ('queued', 'waiting', 'running')
     ORDER BY t.depth DESC, r.id FOR UPDATE OF r
  LOOP
    UPDATE walflow.runs SET status = 'cancelled', finished_at = now(), updated_at = now(), lease_owner = NULL, lease_expires_at = NULL
     WHERE id = v_id;
    DELETE FROM walflow.waits WHERE run_id = v_id;
    IF v_was = 'running' THEN
      -- A worker holds it: its next checkpoint is refused, and its worker is told to abort now.
      INSERT INTO walflow.cancelled_running (run_id) VALUES (v_id)
      ON CONFLICT (run_id) DO UPDATE SET cancelled_at = now();
      PERFORM pg_notify('walflow_cancel', v_id::text);
    END IF;
    v_n := v_n + 1;
  END LOOP;
  RETURN v_n;
END;
$$;
REVOKE ALL ON FUNCTION walflow.cancel_tree(uuid) FROM PUBLIC;
