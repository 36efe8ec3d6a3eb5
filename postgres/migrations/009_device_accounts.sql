-- 009: devices' own MQTT accounts, provisioned by an admin on the portal (doc/security.md).
--
-- The broker's dynamic security plugin holds the account itself (its salted password hash
-- and its topic rights); this table is the portal's record of who provisioned which device,
-- when, and whether it was revoked. No password is kept here: it is shown once.

CREATE TABLE device_accounts (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site        text NOT NULL,
    room        text NOT NULL,
    device      text NOT NULL,
    username    text NOT NULL,                     -- the MQTT username: site/room/device
    client_certificate_serial text,                -- set when a client certificate was issued
    created_by  integer REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_by  integer REFERENCES users (id) ON DELETE SET NULL,
    revoked_at  timestamptz                        -- set: the broker has deleted the account
);

-- One live account per device; revoked ones stay for the record.
CREATE UNIQUE INDEX device_accounts_live ON device_accounts (username) WHERE revoked_at IS NULL;

-- Devices that asked for an account through the shared enrolment login (MQTT_ENROLMENT):
-- in quarantine until an admin approves or rejects them. A device that asks again while
-- its request waits only bumps last_requested_at.
CREATE TABLE device_enrolments (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id   text NOT NULL,                     -- the MQTT client id it asked with
    site        text NOT NULL,
    room        text NOT NULL,
    device      text NOT NULL,
    requested_at      timestamptz NOT NULL DEFAULT now(),
    last_requested_at timestamptz NOT NULL DEFAULT now(),
    requests    integer NOT NULL DEFAULT 1,
    decision    text CHECK (decision IN ('approved', 'rejected')),
    decided_by  integer REFERENCES users (id) ON DELETE SET NULL,
    decided_at  timestamptz,
    CHECK ((decision IS NULL) = (decided_at IS NULL))
);

CREATE UNIQUE INDEX device_enrolments_waiting ON device_enrolments (client_id)
    WHERE decision IS NULL;
