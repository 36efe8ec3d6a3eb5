-- 008: the audit log: who did what in the portal, when and from where (doc/security.md).
--
-- Written by octopus_portal.audit.record() in the request's own connection, so a change
-- and its row commit together. Rows are only ever added.
--
-- actor is the username as text, not only a reference: the row must still say who it was
-- after that user is deleted. actor_id has no foreign key for the same reason (a key with
-- ON DELETE SET NULL would rewrite history); user ids are identities, never reused.

CREATE TABLE audit_log (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text,                  -- username (or "key:<name>"); NULL: nobody logged in
    actor_id  integer,               -- users.id at the time; NULL for nobody or a key
    action    text NOT NULL          -- short dotted name, e.g. login.failed, user.created
              CHECK (action ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$'),
    subject   text,                  -- what it was done to, e.g. a username, site/room/device
    detail    jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(detail) = 'object'),
    address   inet                   -- the client's address as the portal saw it
);

-- The /audit page walks the primary key newest first (its filters narrow that walk);
-- commands.py lists one subject's recent commands of one action.
CREATE INDEX audit_log_action_subject ON audit_log (action, subject, at DESC);
