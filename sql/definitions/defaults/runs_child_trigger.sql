-- A child run's end is counted by its parent's wait (functions/child_finished.sql). The WHEN clause
-- keeps every other update of walflow.runs (claims, leases, checkpoints of runs without a parent)
-- from calling the function at all.
CREATE OR REPLACE TRIGGER runs_child_finished
  AFTER UPDATE OF status ON walflow.runs
  FOR EACH ROW
  WHEN (NEW.parent_run_id IS NOT NULL AND OLD.status IN ('queued', 'waiting', 'running')
        AND NEW.status IN ('completed', 'failed', 'cancelled', 'superseded'))
  EXECUTE FUNCTION walflow.child_finished();
