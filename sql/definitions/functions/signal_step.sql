-- walflow.signal_step(name, signal, timeout): waits for a named signal (walflow.signal) for
-- walflow.create_pipeline; its output is the signal's payload, or a timed-out marker.
-- A pure builder of the step's JSON (the engine's { name, waitFor } step): anyone may call it.
CREATE OR REPLACE FUNCTION walflow.signal_step(name text, signal text, timeout text DEFAULT NULL) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT jsonb_build_object('name', name, 'waitFor', jsonb_strip_nulls(jsonb_build_object('signal', signal, 'timeout', timeout)))
$$;
