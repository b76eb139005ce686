-- An admin's access to one account's gallery: given for a stated reason, for a limited time.
-- Every view under it is also in the audit log, with this row's id as the subject; the owner
-- reads both on their Account tab. The admin's address is kept so the owner still sees who
-- looked after that admin's account is gone.
CREATE TABLE admin_access (
    id             TEXT PRIMARY KEY NOT NULL,
    admin_id       TEXT REFERENCES users(id) ON DELETE SET NULL,
    admin_email    TEXT NOT NULL,
    owner_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    reason         TEXT NOT NULL,
    started_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    pages_viewed   BIGINT NOT NULL DEFAULT 0,
    assets_viewed  BIGINT NOT NULL DEFAULT 0,
    last_viewed_at BIGINT
);
-- The owner's list, newest first; an admin's current access to one account.
CREATE INDEX admin_access_owner ON admin_access (owner_id, started_at DESC, id DESC);
CREATE INDEX admin_access_current ON admin_access (admin_id, owner_id, expires_at);
