-- walflow:amends 0c7a91c02255e3ee
-- Operator surface: the process registry behind `walflow status`. The views and functions that
-- answer operators (walflow.status, list_runs, ...) live in sql/definitions.

-- Each walflow process heartbeats here, so operators can see who is alive and what it holds.
CREATE TABLE walflow.workers (
  owner        text PRIMARY KEY,
  host         text NOT NULL,
  pid          integer NOT NULL,
  pipelines    text[] NOT NULL,
  in_flight    integer NOT NULL DEFAULT 0,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);
