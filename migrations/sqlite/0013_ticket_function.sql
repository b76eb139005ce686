-- Nothing on SQLite: a ticket's statements are sent as one batch text there (see
-- app/src/server/uploads/tickets.rs); PostgreSQL records tickets through a function.
SELECT 1;
