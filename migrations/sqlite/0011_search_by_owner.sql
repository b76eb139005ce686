-- PostgreSQL's prompt index gains the owner as a term of the document. SQLite's FTS5 table
-- already reads one account's matches well enough; this keeps both backends' migrations in step.
SELECT 1;
