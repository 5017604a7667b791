-- Authorization of the SQL API: an application role touches only the runs it started. The functions
-- that enforce it are in sql/definitions (start_batch, start, status, result, cancel, caller_*).
--
-- Before this, any role with USAGE on schema walflow could call walflow.start(p, input, 'some-key')
-- and supersede another principal's queued run of that key (a WAL-started run could thus be
-- suppressed, and replaced by forged input), and learn another principal's run id by guessing its
-- dedupe id. Now every run records who started it, and latest-wins and dedupe apply only among runs
-- of the same starter.
--
-- Who the caller is: inside a SECURITY DEFINER function current_user is walflow's owner, so the
-- caller is the role it acts as in its session: the role of its SET ROLE if any (PostgreSQL only
-- lets a session SET ROLE to a role it is a member of), else its login role (session_user). A
-- pooler that logs in as one role and SET ROLEs per client therefore separates its clients'
-- principals; one that does not shares a single principal among all of them.
--
-- walflow itself is one principal, stored as started_by NULL: the replication writer (a plain
-- INSERT, the column default: nothing added per row to that hot path), backfill and the replay path
-- through start_batch, and any role that may write walflow.runs directly (INSERT on it: the owner,
-- the worker and replication roles, superusers). Such a role could write any run anyway, so treating
-- it as walflow grants it nothing new. Only walflow's principal supersedes WAL-started runs.
ALTER TABLE walflow.runs ADD COLUMN started_by text;
COMMENT ON COLUMN walflow.runs.started_by IS
  'The role that started the run from SQL (its SET ROLE, else its login role); NULL: walflow itself (WAL, backfill) or a role with INSERT on walflow.runs';

-- Who may start a pipeline's runs from SQL (members of these roles); NULL: any role with USAGE on
-- schema walflow; an empty list: walflow's own principal only. Set from the definition's startRoles.
ALTER TABLE walflow.pipelines ADD COLUMN start_roles text[];

-- Dedupe ids are per starter: a role never gets, nor learns of, another principal's run by its id.
-- The same name, so nothing that names the index changes; a replay of a WAL change still fails the
-- replication writer's plain INSERT with a unique violation.
DROP INDEX walflow.runs_dedupe;
CREATE UNIQUE INDEX runs_dedupe ON walflow.runs (pipeline, dedupe_id, (coalesce(started_by, ''))) WHERE dedupe_id IS NOT NULL;
