-- One row per login, so a person can see where they are signed in and end any of it. The
-- session store holds the row's id; a session whose row is gone is logged out on its next
-- request (on every replica), which is how "end this session" and a password change reach
-- sessions held by other browsers.
CREATE TABLE logins (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    ip            TEXT NOT NULL,
    device        TEXT NOT NULL
);
CREATE INDEX logins_by_user ON logins (user_id, last_seen_at);

-- Accounts being deleted. The row outlives the account (no foreign key) until a last pass over
-- storage has removed whatever a job still running at the time of deletion wrote; a deletion
-- interrupted by a crash is finished by the sweeper from here.
CREATE TABLE account_erasures (
    user_id       TEXT PRIMARY KEY NOT NULL,
    requested_at  BIGINT NOT NULL
);
