-- Pipelines defined from SQL (walflow.create_pipeline, walflow.create_embedding_pipeline; issue #14).
-- Running `walflow run` processes load them beside their pipeline files and pick up every change
-- (NOTIFY walflow_pipelines, with a poll as backstop). Functions are in sql/definitions.

-- One row per SQL-defined pipeline: its current definition. `version` counts alterations (1 at
-- create). `definer` is the role that created or last altered it (its SET ROLE, else its login
-- role): its SQL steps run with that role's privileges, never with walflow's.
CREATE TABLE walflow.sql_pipelines (
  name       text PRIMARY KEY,
  version    integer NOT NULL,
  kind       text NOT NULL CHECK (kind IN ('steps', 'embedding')),
  definition jsonb NOT NULL,
  definer    text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- SQL steps: one function per (pipeline, step, version), owned by the definer and SECURITY
-- DEFINER, so the statement runs with the definer's privileges wherever walflow's worker calls it
-- from. Nobody but walflow's owner may use the schema unless the operator grants it (CREATE to the
-- roles that define pipelines: README, "From SQL").
CREATE SCHEMA walflow_steps;
REVOKE ALL ON SCHEMA walflow_steps FROM PUBLIC;
