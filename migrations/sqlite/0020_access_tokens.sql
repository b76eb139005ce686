-- Personal access tokens for the JSON API. Only the SHA-256 of a token is kept (`token_hash`);
-- `prefix` is its first characters, for its owner to recognise it by. `scopes` is a
-- space-separated list (`jobs:read uploads:write`).
CREATE TABLE access_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX access_tokens_user ON access_tokens (user_id, created_at DESC, id DESC);
