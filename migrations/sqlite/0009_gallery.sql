-- The gallery: a result can be put in the trash (and restored) until the trash is emptied,
-- and each gallery page (everything shown, the trash, the favorites) reads one index from
-- where the previous page ended, however deep it is. The sweeper finds trash that is due by
-- when it was trashed.
ALTER TABLE assets ADD COLUMN trashed_at BIGINT;
CREATE INDEX assets_shown ON assets (user_id, created_at DESC, id DESC) WHERE trashed_at IS NULL;
CREATE INDEX assets_favorites ON assets (user_id, created_at DESC, id DESC)
    WHERE favorite = 1 AND trashed_at IS NULL;
CREATE INDEX assets_trashed ON assets (user_id, created_at DESC, id DESC) WHERE trashed_at IS NOT NULL;
CREATE INDEX assets_trash_due ON assets (trashed_at) WHERE trashed_at IS NOT NULL;

-- Objects whose rows are gone, waiting to be deleted from storage. A result deleted for good
-- loses its row and gains its entries here in one transaction, so a restore racing the delete
-- finds nothing to restore and no object outlives its row unnoticed: the delete is retried
-- (by the same request, then by the sweeper) until storage confirms it.
CREATE TABLE object_deletions (
    bucket     TEXT NOT NULL,
    object_key TEXT NOT NULL,
    queued_at  BIGINT NOT NULL,
    PRIMARY KEY (bucket, object_key)
);
