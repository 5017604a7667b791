-- Starting runs from SQL needs only USAGE on schema walflow. walflow.start and walflow.start_batch
-- run with the privileges of walflow's owner (the role that migrates), so an application role
-- that starts runs is granted no table privileges at all: it cannot read other runs' inputs,
-- change their status, or touch checkpoints. The search path is pinned, so nothing in the
-- caller's path can stand in for an object these functions use.
ALTER FUNCTION walflow.start_batch(text, jsonb) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION walflow.start(text, jsonb, text, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION walflow.uuid_v7() SET search_path = pg_catalog, pg_temp;
