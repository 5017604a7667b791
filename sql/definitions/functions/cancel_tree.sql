-- walflow.cancel_tree(run): cancels a run and its unfinished descendants (child runs started by its
-- children steps, and theirs), whoever started them. Internal: walflow.cancel checks the caller
-- first, and a parent's join or race cancels the children it no longer needs. Not granted to anyone.
-- Returns how many runs it cancelled.
CREATE OR REPLACE FUNCTION walflow.cancel_tree(run uuid) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_n integer;
BEGIN
  WITH RECURSIVE tree AS (
    SELECT r.id FROM walflow.runs r WHERE r.id = run
    UNION ALL
    SELECT c.id FROM walflow.runs c JOIN tree t ON c.parent_run_id = t.id
  ), target AS (
    SELECT r.id, r.status FROM walflow.runs r JOIN tree t ON t.id = r.id
     WHERE r.status IN ('queued', 'waiting', 'running')
     ORDER BY r.id FOR UPDATE OF r
  ), cancelled AS (
    UPDATE walflow.runs r SET status = 'cancelled', finished_at = now(), updated_at = now(), lease_owner = NULL, lease_expires_at = NULL
      FROM target WHERE r.id = target.id
    RETURNING r.id, target.status AS was
  ), fenced AS (
    -- A run a worker holds: its next checkpoint is refused, and its worker told to abort now.
    INSERT INTO walflow.cancelled_running (run_id)
    SELECT id FROM cancelled WHERE was = 'running'
    ON CONFLICT (run_id) DO UPDATE SET cancelled_at = now()
    RETURNING run_id
  ), notified AS (
    SELECT pg_notify('walflow_cancel', run_id::text) FROM fenced
  ), unparked AS (
    DELETE FROM walflow.waits w USING cancelled c WHERE w.run_id = c.id
  )
  SELECT count(*)::integer INTO v_n FROM cancelled LEFT JOIN (SELECT count(*) FROM notified) n ON true;
  RETURN v_n;
END;
$$;
REVOKE ALL ON FUNCTION walflow.cancel_tree(uuid) FROM PUBLIC;
