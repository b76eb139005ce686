-- What each job was estimated to cost when it was accepted, in millionths of a US dollar (fal's
-- pricing API, with the owner's key); NULL when no estimate could be had.
ALTER TABLE jobs ADD COLUMN estimate_micros BIGINT;
-- The spend of a user's jobs in a day or month is summed from this index alone.
CREATE INDEX jobs_spend ON jobs (user_id, created_at, state, estimate_micros) WHERE estimate_micros IS NOT NULL;

-- Limits of one user that differ from the server's defaults. Spending caps are in millionths
-- of a US dollar: an admin's (`spend_*`) replaces the default for this user (NULL: the default
-- applies); the user's own (`own_spend_*`) can only lower what applies.
CREATE TABLE user_limits (
    user_id                TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    spend_day_micros       BIGINT CHECK (spend_day_micros >= 0),
    spend_month_micros     BIGINT CHECK (spend_month_micros >= 0),
    own_spend_day_micros   BIGINT CHECK (own_spend_day_micros >= 0),
    own_spend_month_micros BIGINT CHECK (own_spend_month_micros >= 0),
    updated_at             BIGINT NOT NULL
);
