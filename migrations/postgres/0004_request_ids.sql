-- The id of the request that created a job, so its log lines and the worker's can be joined.
ALTER TABLE jobs ADD COLUMN request_id TEXT;
