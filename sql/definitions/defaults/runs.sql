-- Column defaults that call walflow functions: set here, after the functions exist, rather than in the
-- migration that created the table.
ALTER TABLE walflow.runs ALTER COLUMN id SET DEFAULT walflow.uuid_v7();
