-- walflow.drop_schedule(name): removes a schedule; false when there was none. Runs it already
-- started are not touched. A schedule declared in a pipeline file comes back when a process loads
-- that file again: remove it from the file instead.
-- An operator function: it needs walflow's table privileges (not SECURITY DEFINER).
CREATE OR REPLACE FUNCTION walflow.drop_schedule(name text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM walflow.schedules s WHERE s.name = $1;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM pg_notify('walflow_schedules', $1);
  RETURN true;
END;
$$;
