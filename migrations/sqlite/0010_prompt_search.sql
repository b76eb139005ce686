-- Searching prompts. `prompt_search` is the prompt as the app folds it (lowercase, accents
-- removed), so both engines index the same words; here an FTS5 table holds it, filled as jobs
-- are created. An account's rows are removed with the account (see the erase code): FTS5 can
-- find rows quickly only by its own rowid, so no per-job trigger deletes them.
ALTER TABLE jobs ADD COLUMN prompt_search TEXT;
UPDATE jobs SET prompt_search = lower(json_extract(params_json, '$.prompt'));
CREATE VIRTUAL TABLE job_search USING fts5(
    job_id UNINDEXED,
    user_id UNINDEXED,
    body,
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO job_search (job_id, user_id, body) SELECT id, user_id, prompt_search FROM jobs WHERE prompt_search IS NOT NULL;
CREATE TRIGGER job_search_on_create AFTER INSERT ON jobs WHEN NEW.prompt_search IS NOT NULL
BEGIN
    INSERT INTO job_search (job_id, user_id, body) VALUES (NEW.id, NEW.user_id, NEW.prompt_search);
END;
