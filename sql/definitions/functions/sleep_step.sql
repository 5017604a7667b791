-- walflow.sleep_step(name, duration): a durable sleep for walflow.create_pipeline ('10m', '2h', '1d').
-- A pure builder of the step's JSON (the engine's { name, sleep } step): anyone may call it.
CREATE OR REPLACE FUNCTION walflow.sleep_step(name text, duration text) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT jsonb_build_object('name', name, 'sleep', duration)
$$;
