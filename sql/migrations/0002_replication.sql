-- walflow:amends a8dee55ac2b8db75
-- walflow replication source: where each slot's consumer stands, what it could not turn into runs,
-- and how far behind it is. The slot itself lives in pg_replication_slots; this is walflow's side.

-- One row per replication slot walflow consumes. durable_lsn is recorded (in its own small
-- transaction) only after the run starts of every change up to it have committed, so it never
-- claims a change whose runs did not commit; the slot is acknowledged only up to it (confirmed_lsn
-- is the last position sent to the server).
CREATE TABLE walflow.replication_state (
  slot_name           text PRIMARY KEY,
  publication         text NOT NULL,
  -- End LSN of the last source transaction whose run starts all committed (or of a heartbeat).
  durable_lsn         pg_lsn NOT NULL DEFAULT '0/0',
  confirmed_lsn       pg_lsn NOT NULL DEFAULT '0/0',
  -- The process consuming the slot (it holds the slot's advisory lock) and its liveness.
  leader_id           text,
  leader_since        timestamptz,
  leader_heartbeat_at timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50); -- updated by every batch: keep those updates HOT

-- Changes that could not become runs, and source problems (a dropped table, a failing predicate).
-- Written in the writer's batch transaction, which commits before durable_lsn may move past the
-- change, so nothing is dropped silently; a replay after a crash writes nothing twice (unique per
-- pipeline and change position).
CREATE TABLE walflow.replication_errors (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  slot_name    text NOT NULL,
  pipeline     text,
  source_table text,
  op           text,
  kind         text NOT NULL,
  message      text NOT NULL,
  -- Commit LSN of the change's transaction and its position within it.
  lsn          pg_lsn,
  source_index integer,
  key          text,
  detail       jsonb,
  -- Whether trying again later may succeed (e.g. a pipeline not registered yet).
  retriable    boolean NOT NULL DEFAULT false,
  created_at   timestamptz NOT NULL DEFAULT now(),
  resolved_at  timestamptz
);
CREATE UNIQUE INDEX replication_errors_change ON walflow.replication_errors (slot_name, pipeline, lsn, source_index, kind)
  WHERE lsn IS NOT NULL;
CREATE INDEX replication_errors_open ON walflow.replication_errors (created_at) WHERE resolved_at IS NULL;
