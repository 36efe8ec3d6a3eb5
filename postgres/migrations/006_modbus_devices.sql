-- 006: Modbus TCP devices that Node-RED polls (doc/modbus.md), and what the polling sees.
--
-- Admins manage modbus_devices in the portal (/modbus); the octopus-modbus node reads the
-- enabled rows every few seconds and starts, changes or stops its pollers to match, so a
-- change needs no redeploy. What is read is published on the topic contract
-- (<site>/<room>/<name>/<attribute>) and stored by the ingest like any device's readings.

CREATE TABLE modbus_devices (
    id               integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- topic levels: non-empty, no '/', '+', '#', no leading '$' (the topic contract)
    site             text NOT NULL CHECK (site ~ '^[^/+#$[:cntrl:]][^/+#[:cntrl:]]{0,127}$'),
    room             text NOT NULL CHECK (room ~ '^[^/+#$[:cntrl:]][^/+#[:cntrl:]]{0,127}$'),
    name             text NOT NULL CHECK (name ~ '^[^/+#$[:cntrl:]][^/+#[:cntrl:]]{0,127}$'),
    host             text NOT NULL CHECK (host ~ '^[A-Za-z0-9.:_-]{1,253}$'),
    port             integer NOT NULL DEFAULT 502 CHECK (port BETWEEN 1 AND 65535),
    unit_id          integer NOT NULL DEFAULT 1 CHECK (unit_id BETWEEN 0 AND 255),
    profile          text NOT NULL CHECK (profile ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),  -- modbus/profiles/<profile>.json
    poll_interval_ms integer NOT NULL DEFAULT 1000 CHECK (poll_interval_ms BETWEEN 100 AND 86400000),
    enabled          boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site, room, name)
);

-- One row per device, rewritten by the polling worker every few seconds (counters since
-- `since`, when that worker started polling the device). Kept apart from modbus_devices so
-- that these writes never race an admin's edit.
CREATE TABLE modbus_poll_stats (
    device_id           integer PRIMARY KEY REFERENCES modbus_devices (id) ON DELETE CASCADE,
    worker              text NOT NULL,
    since               timestamptz NOT NULL,
    status              text CHECK (status IN ('online', 'offline')),  -- NULL: not polled yet
    polls               bigint NOT NULL DEFAULT 0,  -- poll attempts
    ok                  bigint NOT NULL DEFAULT 0,
    timeouts            bigint NOT NULL DEFAULT 0,  -- no answer in time
    exceptions          bigint NOT NULL DEFAULT 0,  -- Modbus exception responses
    connection_errors   bigint NOT NULL DEFAULT 0,  -- refused, reset, closed
    garbage             bigint NOT NULL DEFAULT 0,  -- answers that are not valid Modbus
    overflows           bigint NOT NULL DEFAULT 0,  -- ticks skipped: the previous poll still ran
    consecutive_failures integer NOT NULL DEFAULT 0,
    last_ok_at          timestamptz,
    last_error          text,
    last_error_at       timestamptz,
    late_ms_max         integer,                    -- worst start lateness vs the schedule
    updated_at          timestamptz NOT NULL DEFAULT now()
);
