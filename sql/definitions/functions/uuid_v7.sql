-- walflow.uuid_v7(): a time-ordered UUID (v7 layout: a 48-bit Unix time in milliseconds, version 7,
-- RFC 4122 variant, random bits from gen_random_uuid()), so the runs primary key index stays
-- append-mostly. Every name in the body is schema-qualified, operators included, so no search path
-- can stand in for one; there is deliberately no SET search_path clause, which would keep the planner
-- from inlining the function into the statements that call it (measured in docs/benchmarks.md).
CREATE OR REPLACE FUNCTION walflow.uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT pg_catalog.encode(
    pg_catalog.set_bit(pg_catalog.set_bit(
      pg_catalog.overlay(
        pg_catalog.uuid_send(pg_catalog.gen_random_uuid()),
        pg_catalog.substring(pg_catalog.int8send(pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) OPERATOR(pg_catalog.*) 1000)::bigint), 3),
        1, 6),
      52, 1), 53, 1), 'hex')::uuid
$$;
