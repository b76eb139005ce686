-- Periodic queries read only the rows still in play, however long the history grows: the
-- worker's due jobs, a user's unfinished jobs, tickets waiting or being checked, uploads whose
-- objects still need deleting, and a user's ready images. The states are written out as the
-- queries write them, so SQLite can match each index to its query.
DROP INDEX jobs_due;
CREATE INDEX jobs_active_due ON jobs (next_attempt_at)
    WHERE state IN ('queued', 'submitted', 'running', 'persisting');
CREATE INDEX jobs_active_by_user ON jobs (user_id)
    WHERE state IN ('queued', 'submitted', 'running', 'persisting');
DROP INDEX uploads_by_state;
CREATE INDEX uploads_issued ON uploads (expires_at) WHERE state = 'issued';
CREATE INDEX uploads_confirming ON uploads (updated_at) WHERE state = 'confirming';
CREATE INDEX uploads_unswept ON uploads (updated_at)
    WHERE state IN ('deleted', 'rejected', 'canceled') AND swept_at IS NULL;
CREATE INDEX uploads_ready_by_user ON uploads (user_id, created_at DESC, id DESC) WHERE state = 'ready';

-- Flags hold 0 or 1. SQLite cannot add a CHECK to an existing table without rebuilding it
-- (which, inside a migration's transaction, would cascade-delete the rows that reference it),
-- so triggers refuse anything else, as a CHECK would.
CREATE TRIGGER jobs_webhook_is_a_flag BEFORE INSERT ON jobs WHEN NEW.webhook NOT IN (0, 1)
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: jobs.webhook IN (0, 1)'); END;
CREATE TRIGGER jobs_webhook_stays_a_flag BEFORE UPDATE OF webhook ON jobs WHEN NEW.webhook NOT IN (0, 1)
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: jobs.webhook IN (0, 1)'); END;
CREATE TRIGGER assets_flags BEFORE INSERT ON assets
    WHEN NEW.favorite NOT IN (0, 1) OR (NEW.nsfw IS NOT NULL AND NEW.nsfw NOT IN (0, 1))
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: assets.favorite and assets.nsfw IN (0, 1)'); END;
CREATE TRIGGER assets_flags_stay BEFORE UPDATE OF favorite, nsfw ON assets
    WHEN NEW.favorite NOT IN (0, 1) OR (NEW.nsfw IS NOT NULL AND NEW.nsfw NOT IN (0, 1))
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: assets.favorite and assets.nsfw IN (0, 1)'); END;
