-- 005: API keys for the REST API (doc/api.md).
--
-- A key is shown once, when an admin creates it; only its SHA-256 is kept. A fast hash is
-- right here, unlike for passwords: a key is 32 random bytes, so there is nothing to guess
-- from a stolen hash, and every API call can verify its key in microseconds.

CREATE TABLE api_keys (
    id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL CHECK (name <> ''),  -- what it is for, e.g. "grafana"
    prefix       text NOT NULL,                     -- the key's first characters, shown in lists
    key_hash     bytea NOT NULL UNIQUE,             -- SHA-256 of the whole key: the lookup
    scopes       text[] NOT NULL
                 CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'write']::text[]),
    site         text CHECK (site <> ''),           -- NULL: every site
    created_by   integer REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,                       -- updated at most once a minute
    revoked_at   timestamptz                        -- set: refused from then on, kept for the record
);
