-- Searching prompts. `prompt_search` is the prompt as the app folds it (lowercase, accents
-- removed), so both engines index the same words; here a GIN index over its words. Jobs made
-- before this migration are folded to lowercase only (PostgreSQL has no accent folding without
-- an extension).
ALTER TABLE jobs ADD COLUMN prompt_search TEXT;
UPDATE jobs SET prompt_search = lower(params_json::jsonb ->> 'prompt');
CREATE INDEX jobs_prompt_search ON jobs USING GIN (to_tsvector('simple', coalesce(prompt_search, '')));
