-- `Idempotency-Key`s of job-creating API calls: a retried request with the same key gets the
-- job the first one made instead of a second job (and a second charge). `request_hash` tells a
-- retry from a different request reusing the key; `job_id` is NULL while the first is running.
CREATE TABLE idempotency_keys (
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    job_id       TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);
