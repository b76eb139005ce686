-- Periodic queries read only the rows still in play, however long the history grows: the
-- worker's due jobs, a user's unfinished jobs, tickets waiting or being checked, uploads whose
-- objects still need deleting, and a user's ready images.
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

-- Flags hold 0 or 1.
ALTER TABLE jobs ADD CONSTRAINT jobs_webhook_is_a_flag CHECK (webhook IN (0, 1));
ALTER TABLE assets ADD CONSTRAINT assets_favorite_is_a_flag CHECK (favorite IN (0, 1));
ALTER TABLE assets ADD CONSTRAINT assets_nsfw_is_a_flag CHECK (nsfw IN (0, 1));
