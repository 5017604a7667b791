-- walflow.http_step(name, method, url, headers, body, timeout_ms): an HTTP step for
-- walflow.create_pipeline. Only hosts the operator allows are called (WALFLOW_HTTP_ALLOW_HOSTS).
-- A pure builder of the step's JSON: anyone may call it.
CREATE OR REPLACE FUNCTION walflow.http_step(name text, method text, url text, headers jsonb DEFAULT '{}', body jsonb DEFAULT NULL,
                                             timeout_ms integer DEFAULT NULL) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object('kind', 'http', 'name', name, 'method', upper(method), 'url', url,
                                              'headers', coalesce(headers, '{}'), 'body', body, 'timeoutMs', timeout_ms))
$$;
