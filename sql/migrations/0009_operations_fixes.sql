-- Operating walflow: a retried run keeps its failure history, runs list in exact start order,
-- dead worker processes and dropped slots stop looking alive. The functions and views are in
-- sql/definitions (retry, retry_failed, list_runs, worker_health, replication_status).

-- Attempts of the step at step_index made before the last `walflow.retry` of the run. `attempt`
-- keeps counting executions across retries (so that every execution keeps its own timeline entry:
-- step_errors' key is (run, step, attempt)); the step's retry budget counts from here.
ALTER TABLE walflow.runs ADD COLUMN retry_base integer NOT NULL DEFAULT 0;

-- walflow.list_runs returns other columns now (steps_done, current_step): CREATE OR REPLACE cannot
-- change a function's result type, so the old one goes here and sql/definitions/functions/list_runs.sql
-- creates the new one. (IF EXISTS: a new database has no definitions yet when migrations run.)
DROP FUNCTION IF EXISTS walflow.list_runs(text, text, text, uuid, integer);
