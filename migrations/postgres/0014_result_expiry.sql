-- The sweeper deletes results whose expires_at passed unless they are favorites or in the trash
-- (which keeps them its own time); it looks for them often, so it reads only those that can
-- expire, in the order they do.
CREATE INDEX assets_expiring ON assets (expires_at) WHERE favorite = 0 AND trashed_at IS NULL AND expires_at IS NOT NULL;
-- Results made while DARKROOM_RESULT_TTL_DAYS was 0 were stored as expiring when made; 0 means
-- kept.
UPDATE assets SET expires_at = NULL WHERE expires_at <= created_at;
-- Expiry was shown but not enforced before: results already past it get a week from this
-- upgrade instead of going at the first sweep.
UPDATE assets SET expires_at = (extract(epoch FROM now()) * 1000)::bigint + 604800000
WHERE expires_at < (extract(epoch FROM now()) * 1000)::bigint;
