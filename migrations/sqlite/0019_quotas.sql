-- An account's own upload and storage quotas, set by an admin; NULL: the server's default
-- (DARKROOM_UPLOADS_PER_DAY, DARKROOM_UPLOAD_BYTES_PER_DAY, DARKROOM_STORAGE_QUOTA_MB) applies.
ALTER TABLE user_limits ADD COLUMN uploads_day BIGINT CHECK (uploads_day >= 0);
ALTER TABLE user_limits ADD COLUMN upload_bytes_day BIGINT CHECK (upload_bytes_day >= 0);
ALTER TABLE user_limits ADD COLUMN storage_bytes BIGINT CHECK (storage_bytes >= 0);
