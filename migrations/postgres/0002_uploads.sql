-- Upload tickets and the images they became.
-- A ticket is issued with a presigned PUT for `upload_key`; on confirm the server validates the
-- bytes and writes a sanitized copy to `object_key`, a key no presigned PUT was ever issued for.

CREATE TABLE uploads (
    id              TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    state           TEXT NOT NULL CHECK (state IN ('issued', 'confirming', 'ready', 'rejected', 'expired', 'canceled', 'deleted')),
    upload_key      TEXT NOT NULL UNIQUE,
    object_key      TEXT UNIQUE,
    declared_type   TEXT NOT NULL,
    declared_bytes  BIGINT NOT NULL CHECK (declared_bytes > 0),
    declared_sha256 TEXT NOT NULL,
    filename        TEXT,
    content_type    TEXT,
    byte_size       BIGINT,
    sha256          TEXT,
    width           BIGINT,
    height          BIGINT,
    reject_reason   TEXT,
    expires_at      BIGINT NOT NULL,
    swept_at        BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    CHECK (state <> 'ready' OR (object_key IS NOT NULL AND sha256 IS NOT NULL AND width IS NOT NULL))
);
CREATE INDEX uploads_by_user ON uploads (user_id, created_at DESC, id DESC);
CREATE INDEX uploads_by_state ON uploads (state, expires_at);

-- Per-user daily upload usage, counted atomically when a ticket is issued (O(1) quota checks).
CREATE TABLE upload_usage (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    day     BIGINT NOT NULL,
    tickets BIGINT NOT NULL,
    bytes   BIGINT NOT NULL,
    PRIMARY KEY (user_id, day)
);
