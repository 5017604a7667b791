-- Schedules: pipelines that start runs by themselves on cron ticks or at a fixed interval.
-- The cron text cannot be read in SQL: a walflow process computes next_tick (NULL until it has,
-- or when the schedule changed) and records a text it cannot read in `error`.
CREATE TABLE walflow.schedules (
  name       text PRIMARY KEY,
  pipeline   text NOT NULL,
  cron       text,
  every_ms   bigint CHECK (every_ms > 0),
  timezone   text NOT NULL DEFAULT 'UTC',
  input      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(input) = 'object'),
  catch_up   text NOT NULL DEFAULT 'latest' CHECK (catch_up IN ('latest', 'all', 'none')),
  -- 'file': declared by a pipeline file (rewritten whenever a process loads it); 'sql': walflow.create_schedule.
  origin     text NOT NULL CHECK (origin IN ('file', 'sql')),
  next_tick  timestamptz,
  last_tick  timestamptz,
  error      text,
  created_by text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((cron IS NULL) <> (every_ms IS NULL))
);

-- The scheduler's question, "what is due, and when is the next one?", reads this index.
CREATE INDEX schedules_next_tick ON walflow.schedules (next_tick) WHERE error IS NULL;
