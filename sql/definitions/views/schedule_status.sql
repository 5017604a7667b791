-- walflow.schedule_status: every schedule with its timing, its next and last tick, and whether it
-- is late (due for more than 5 s: no running process loads its pipeline, or it cannot keep up) or
-- broken (error: a cron text or time zone a walflow process could not read; fix it with
-- walflow.create_schedule). next_tick is NULL until a process has computed it.
CREATE OR REPLACE VIEW walflow.schedule_status AS
SELECT name, pipeline, cron, CASE WHEN every_ms IS NOT NULL THEN every_ms * interval '1 millisecond' END AS every,
       timezone, catch_up, origin, input, next_tick, last_tick, error,
       CASE WHEN error IS NOT NULL THEN 'error'
            WHEN next_tick IS NULL THEN 'pending'
            WHEN next_tick < now() - interval '5 seconds' THEN 'late'
            ELSE 'ok' END AS state,
       created_by, created_at, updated_at
FROM walflow.schedules;
