-- Generation jobs and the files they produced (ARCHITECTURE.md §2 "Generate").
-- A job is claimed by a worker with a lease (lease_owner, lease_until), so a crashed worker's job
-- is picked up again; fal_request_id is unique so every completion finds exactly one job.

CREATE TABLE jobs (
    id               TEXT PRIMARY KEY NOT NULL,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    model            TEXT NOT NULL,
    params_json      TEXT NOT NULL,
    upload_ids_json  TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'submitted', 'running', 'persisting', 'succeeded', 'failed', 'canceled')),
    fal_request_id   TEXT UNIQUE,
    webhook          BIGINT NOT NULL DEFAULT 0,
    attempts         BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL,
    polls            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_until      BIGINT,
    queue_position   BIGINT,
    progress         TEXT,
    result_json      TEXT,
    error_code       TEXT,
    error_message    TEXT,
    submitted_at     BIGINT,
    completed_at     BIGINT,
    -- When the job last entered the queue (creation, or a retry): its time limit counts from here.
    queued_at        BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    CHECK (state <> 'persisting' OR result_json IS NOT NULL),
    CHECK (state <> 'failed' OR error_code IS NOT NULL)
);
CREATE INDEX jobs_by_user ON jobs (user_id, created_at DESC, id DESC);
CREATE INDEX jobs_due ON jobs (state, next_attempt_at);

CREATE TABLE assets (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    job_id        TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    position      BIGINT NOT NULL,
    object_key    TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL CHECK (kind IN ('image', 'video', 'audio', 'file')),
    content_type  TEXT NOT NULL,
    byte_size     BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    width         BIGINT,
    height        BIGINT,
    duration_ms   BIGINT,
    thumb_key     TEXT,
    nsfw          BIGINT,
    favorite      BIGINT NOT NULL DEFAULT 0,
    expires_at    BIGINT,
    created_at    BIGINT NOT NULL,
    UNIQUE (job_id, position)
);
CREATE INDEX assets_by_user ON assets (user_id, created_at DESC, id DESC);
