-- Multipart uploads under way, recorded when created: a crash leaves its parts in storage, and
-- not every backend can list them (the embedded endpoint cannot), so this table is how they are
-- found again and aborted. `job_id` is plain text: the upload must be aborted even after its job
-- row is gone.
CREATE TABLE multipart_uploads (
    upload_id   TEXT PRIMARY KEY NOT NULL,
    bucket      TEXT NOT NULL,
    object_key  TEXT NOT NULL,
    job_id      TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX multipart_uploads_by_job ON multipart_uploads (job_id);
