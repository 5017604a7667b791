-- walflow:amends 74ad8010656dcfca
-- Cancelling a running run fences its worker off through a small table instead of a status probe in
-- every checkpoint. Checkpoints are the hottest write walflow makes; a correlated look-up of the
-- run's status for each of them cost as much as the insert itself, to guard against an event
-- (cancelling a run mid-step) that almost never happens. Now a checkpoint is refused only for the
-- runs listed here: an empty or tiny table that the checkpoint statement anti-joins for nearly free.
-- Duplicate execution after a lost lease stays fenced by walflow.steps' primary key.
CREATE TABLE walflow.cancelled_running (
  run_id       uuid PRIMARY KEY,
  cancelled_at timestamptz NOT NULL DEFAULT now()
);
