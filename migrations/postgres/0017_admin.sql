-- When each account last signed in, for the admin's list of users (earlier logins are read
-- from the audit log once, here).
ALTER TABLE users ADD COLUMN last_login_at BIGINT;
UPDATE users SET last_login_at =
    (SELECT MAX(e.at) FROM audit_events e WHERE e.actor_id = users.id AND e.action = 'auth.login');
-- The admin's list of users, newest first, a page at a time.
CREATE INDEX users_by_created ON users (created_at DESC, id DESC);
-- Everyone's jobs, newest first, and the audit log by action or by subject, for the admin pages.
CREATE INDEX jobs_by_created ON jobs (created_at DESC, id DESC);
CREATE INDEX audit_events_action ON audit_events (action, at DESC, id DESC);
CREATE INDEX audit_events_subject ON audit_events (subject_id, at DESC, id DESC);
