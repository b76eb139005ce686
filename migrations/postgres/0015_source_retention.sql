-- Until when a ready upload is kept: the configured time (DARKROOM_SOURCE_TTL_HOURS) after its
-- upload or its last use by a job, whichever is later; NULL while no time applies (kept
-- forever, or uploaded before this column existed: the next sweep gives it its time from then).
ALTER TABLE uploads ADD COLUMN kept_until BIGINT;
CREATE INDEX uploads_kept_until ON uploads (kept_until) WHERE state = 'ready';
