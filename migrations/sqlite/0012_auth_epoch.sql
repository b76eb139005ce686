-- A counter every change to who may sign in moves (a logout, an ended login, a role change, a
-- disable, a deleted account). Each server reads it a few times a second and forgets the
-- sessions it verified lately when it moved, so a change made on one replica, or by the
-- `darkroom` command, applies on all of them.
CREATE TABLE auth_epoch (
    id      INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO auth_epoch (id, version) VALUES (1, 0);
