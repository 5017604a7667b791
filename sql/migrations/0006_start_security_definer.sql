-- walflow:amends 9f529cb739212dd2
-- This migration made walflow.start and walflow.start_batch run with their owner's rights and a
-- pinned search_path. Their definitions now say so themselves, in
-- sql/definitions/functions/start.sql and start_batch.sql. Nothing is left to do here.
SELECT 1;
