-- Records one upload ticket (see app/src/server/uploads/tickets.rs): counts it against the
-- day's usage while both daily limits hold (concurrent tickets cannot both slip under a limit),
-- stores the ticket and its audit event, all or nothing, and answers `issued` (1 or 0) with the
-- day's ticket count (as it stood before this ticket, when it was refused).
--
-- A function so that the tickets a group commit takes together are recorded by one statement,
-- one round trip, calling it once per ticket (app/src/server/db/group_commit.rs): each call's
-- statements are commands of their own, so each ticket sees the usage the ones before it left.
--
-- `a` holds the ticket's values in the order tickets.rs binds them: user, day, bytes, tickets a
-- day, bytes a day, id, state, key, type, sha256, filename, expires, now; then the audit
-- event's columns (id, at, actor, action, subject type, subject id, ip, detail).
CREATE FUNCTION darkroom_record_ticket(a jsonb) RETURNS TABLE (issued bigint, tickets bigint)
LANGUAGE sql VOLATILE AS $$
WITH counted AS (
    INSERT INTO upload_usage (user_id, day, tickets, bytes)
    VALUES (a->>0, (a->>1)::bigint, 1, (a->>2)::bigint)
    ON CONFLICT (user_id, day) DO UPDATE
    SET tickets = upload_usage.tickets + 1, bytes = upload_usage.bytes + (a->>2)::bigint
    WHERE upload_usage.tickets < (a->>3)::bigint AND upload_usage.bytes + (a->>2)::bigint <= (a->>4)::bigint
    RETURNING upload_usage.user_id
), ticket AS (
    INSERT INTO uploads (id, user_id, state, upload_key, declared_type, declared_bytes, declared_sha256,
                         filename, expires_at, created_at, updated_at)
    SELECT a->>5, a->>0, a->>6, a->>7, a->>8, (a->>2)::bigint, a->>9, a->>10, (a->>11)::bigint,
           (a->>12)::bigint, (a->>12)::bigint
    FROM counted
    RETURNING uploads.id
), event AS (
    INSERT INTO audit_events (id, at, actor_id, action, subject_type, subject_id, ip, detail_json)
    SELECT a->>13, (a->>14)::bigint, a->>15, a->>16, a->>17, a->>18, a->>19, a->>20
    FROM ticket
    RETURNING audit_events.id
)
SELECT (SELECT count(*) FROM event),
       (SELECT usage.tickets FROM upload_usage AS usage WHERE usage.user_id = a->>0 AND usage.day = (a->>1)::bigint)
$$;
