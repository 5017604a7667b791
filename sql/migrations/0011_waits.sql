-- Durable waits: runs parked in a step until a time, a signal, their child runs, or a step's own
-- "run me again later" (docs/waits.md). A parked run is an ordinary 'waiting' row of walflow.runs
-- whose run_at is when it must be looked at again ('infinity': only a signal or a child wakes it),
-- so the claim's index (runs_runnable: pipeline, run_at, seq) is also the timer wheel: due runs come
-- first, sleepers cost an index entry and nothing else.

-- What a parked run waits for: at most one row per run, the wait of the step it is parked in. It is
-- written in the transaction that parks the run and deleted in the one that checkpoints the step.
CREATE TABLE walflow.waits (
  run_id      uuid PRIMARY KEY,
  pipeline    text NOT NULL,
  -- The step's checkpoint ordinal (walflow.steps.step_index) and its name.
  step_index  integer NOT NULL,
  step        text NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('sleep', 'signal', 'children', 'repeat')),
  -- sleep, repeat: the wake time; signal, children: the timeout (NULL: none).
  until       timestamptz,
  signal      text,
  -- children: how many were started, how many have not finished yet, and the join:
  -- 'all/fail', 'all/collect', 'race/fail', 'race/collect'.
  children    integer,
  children_left integer,
  mode        text,
  -- repeat: how many times the step has asked to run again.
  repeats     integer NOT NULL DEFAULT 0,
  since       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX waits_pipeline ON walflow.waits (pipeline, kind);

-- Signals: a mailbox per run. A signal sent before its run reaches the wait stays here until a wait
-- for its name consumes it (oldest first); consumed_at is set in the transaction that checkpoints
-- the consuming step, so each signal is consumed exactly once.
CREATE TABLE walflow.signals (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id       uuid NOT NULL,
  name         text NOT NULL,
  payload      jsonb,
  sent_by      text,
  sent_at      timestamptz NOT NULL DEFAULT now(),
  consumed_at  timestamptz,
  consumed_by_step integer
);
CREATE INDEX signals_mailbox ON walflow.signals (run_id, name, id) WHERE consumed_at IS NULL;
CREATE INDEX signals_run ON walflow.signals (run_id);

-- A step skipped by its condition (`when`) has a checkpoint like any other, marked skipped.
ALTER TABLE walflow.steps ADD COLUMN skipped boolean NOT NULL DEFAULT false;

-- Child runs: started by a step of their parent, which waits for them (join or race).
ALTER TABLE walflow.runs
  ADD COLUMN parent_run_id uuid,
  ADD COLUMN parent_step_index integer,
  ADD COLUMN child_index integer;
CREATE INDEX runs_children ON walflow.runs (parent_run_id, parent_step_index, child_index) WHERE parent_run_id IS NOT NULL;
