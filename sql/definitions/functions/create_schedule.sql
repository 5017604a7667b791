-- walflow.create_schedule(name, pipeline, cron, timezone, input, catch_up, every): creates or
-- replaces a schedule that starts runs of `pipeline` on each tick of `cron` (5 fields, or 6 with
-- seconds first) in `timezone`, or every `every` (cron NULL). Each run's input is `input` plus
-- "tick" (ISO time) and "schedule" (its name). A walflow process computes the first tick (after
-- now) within about a second (NOTIFY walflow_schedules; a poll is the backstop); a cron text it
-- cannot read is recorded in walflow.schedule_status.error. Replacing a schedule with a changed
-- timing restarts its ticks from now. Schedules declared in a pipeline file are changed there.
-- An operator function: it needs walflow's table privileges (not SECURITY DEFINER).
CREATE OR REPLACE FUNCTION walflow.create_schedule(
  name text, pipeline text, cron text, timezone text DEFAULT 'UTC', input jsonb DEFAULT '{}',
  catch_up text DEFAULT 'latest', every interval DEFAULT NULL
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  v_fields int;
  v_origin text;
BEGIN
  IF $1 IS NULL OR $1 !~ '^[A-Za-z_][A-Za-z0-9_.:-]{0,99}$' THEN
    RAISE EXCEPTION 'walflow: schedule name must be letters, digits, _ . : - starting with a letter or _ (got %)', coalesce(quote_literal($1), 'NULL')
      USING ERRCODE = 'WF002';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM walflow.pipelines p WHERE p.name = $2) THEN
    RAISE EXCEPTION 'walflow: unknown pipeline "%"', $2
      USING ERRCODE = 'WF001', HINT = 'Pipelines are registered when a walflow worker that loads them starts; see SELECT name FROM walflow.pipelines.';
  END IF;
  IF ($3 IS NULL) = ($7 IS NULL) THEN
    RAISE EXCEPTION 'walflow: a schedule needs exactly one of cron or every' USING ERRCODE = 'WF002',
      HINT = 'walflow.create_schedule(''nightly'', ''my-pipeline'', ''0 3 * * *'') or walflow.create_schedule(''often'', ''my-pipeline'', NULL, every => ''5 minutes'').';
  END IF;
  IF $3 IS NOT NULL THEN
    v_fields := cardinality(regexp_split_to_array(btrim($3), '\s+'));
    IF NOT (v_fields IN (5, 6) OR (v_fields = 1 AND $3 ~ '^\s*@[a-z]+\s*$')) THEN
      RAISE EXCEPTION 'walflow: cron "%" has % fields; use 5 (minute hour day month weekday) or 6 (seconds first)', $3, v_fields
        USING ERRCODE = 'WF002';
    END IF;
  END IF;
  IF $7 IS NOT NULL AND $7 < interval '1 millisecond' THEN
    RAISE EXCEPTION 'walflow: every must be a positive interval (got %)', $7 USING ERRCODE = 'WF002';
  END IF;
  IF $7 IS NOT NULL AND (extract(month FROM $7) <> 0 OR extract(year FROM $7) <> 0) THEN
    RAISE EXCEPTION 'walflow: every must be a fixed interval (days or less per unit, not months or years): use cron for calendar schedules'
      USING ERRCODE = 'WF002';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names z WHERE z.name = $4) THEN
    RAISE EXCEPTION 'walflow: unknown time zone "%"', $4 USING ERRCODE = 'WF002', HINT = 'Use an IANA name such as Europe/Berlin (SELECT name FROM pg_timezone_names).';
  END IF;
  IF $5 IS NULL OR jsonb_typeof($5) <> 'object' THEN
    RAISE EXCEPTION 'walflow: schedule input must be a JSON object' USING ERRCODE = 'WF002', HINT = 'Use ''{}'' for no input.';
  END IF;
  IF $6 IS NULL OR $6 NOT IN ('latest', 'all', 'none') THEN
    RAISE EXCEPTION 'walflow: catch_up must be latest, all or none (got %)', coalesce(quote_literal($6), 'NULL') USING ERRCODE = 'WF002';
  END IF;
  SELECT s.origin INTO v_origin FROM walflow.schedules s WHERE s.name = $1 FOR UPDATE;
  IF v_origin = 'file' THEN
    RAISE EXCEPTION 'walflow: schedule "%" is declared in pipeline "%"''s file; change it there', $1,
      (SELECT s.pipeline FROM walflow.schedules s WHERE s.name = $1) USING ERRCODE = 'WF002';
  END IF;
  INSERT INTO walflow.schedules AS s (name, pipeline, cron, every_ms, timezone, input, catch_up, origin, created_by)
  VALUES ($1, $2, btrim($3), (extract(epoch FROM $7) * 1000)::bigint, $4, $5, $6, 'sql', walflow.caller_role())
  ON CONFLICT ON CONSTRAINT schedules_pkey DO UPDATE
    SET pipeline = EXCLUDED.pipeline, cron = EXCLUDED.cron, every_ms = EXCLUDED.every_ms, timezone = EXCLUDED.timezone,
        input = EXCLUDED.input, catch_up = EXCLUDED.catch_up, updated_at = now(),
        -- A changed timing restarts from now; an unchanged one keeps its place (and its catch-up).
        next_tick = CASE WHEN (s.cron, s.every_ms, s.timezone) IS NOT DISTINCT FROM (EXCLUDED.cron, EXCLUDED.every_ms, EXCLUDED.timezone)
                         THEN s.next_tick END,
        error = CASE WHEN (s.cron, s.every_ms, s.timezone) IS NOT DISTINCT FROM (EXCLUDED.cron, EXCLUDED.every_ms, EXCLUDED.timezone)
                     THEN s.error END;
  PERFORM pg_notify('walflow_schedules', $1);
  RETURN $1;
END;
$$;
