-- walflow:amends a14300d157a1624b
-- This migration replaced walflow.uuid_v7() with an inlinable form. Its definition now lives in
-- sql/definitions/functions/uuid_v7.sql. Nothing is left to do here.
SELECT 1;
