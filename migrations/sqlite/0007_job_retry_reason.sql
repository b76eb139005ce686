-- Why a job waits to be tried again ("Retrying (2/5)" on its card), kept apart from the message
-- the user reads, so the status is a stored fact rather than a test on the message's wording.
ALTER TABLE jobs ADD COLUMN retry_reason TEXT;
UPDATE jobs SET retry_reason = substr(error_message, instr(error_message, ': ') + 2)
 WHERE state IN ('queued', 'persisting') AND error_message LIKE 'Retrying (%): %';
