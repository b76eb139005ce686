-- A prompt search reads only the searching account's jobs. The indexed document starts with
-- the owner as a term of its own ('owner' and the account id without dashes, at weight A,
-- which no prompt word has), so the index intersects "this account" with the words instead of
-- collecting every account's matches and discarding the others'. The query side spells the
-- same expression (see the gallery's search code).
DROP INDEX jobs_prompt_search;
CREATE INDEX jobs_prompt_search ON jobs USING GIN (
    (setweight(to_tsvector('simple', 'owner' || translate(user_id, '-', '')), 'A')
     || to_tsvector('simple', coalesce(prompt_search, '')))
);
