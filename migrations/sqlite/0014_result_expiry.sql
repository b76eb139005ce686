-- The sweeper deletes results whose expires_at passed unless they are favorites; it looks for
-- them often, so it reads only those that can expire, in the order they do.
CREATE INDEX assets_expiring ON assets (expires_at) WHERE favorite = 0 AND expires_at IS NOT NULL;
