-- 007: alerts (doc/alerts.md): the rules admins manage in the portal, the alerts Node-RED
-- raises and clears from them, what happened to each alert, and where notifications go.
--
-- Node-RED's octopus-alerts node reads the enabled rules every few seconds (no redeploy),
-- evaluates them on the stored readings and availability (octopus/live), and writes alerts
-- and their events here; the portal shows them and records acknowledgements.

CREATE TABLE alert_rules (
    id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL CHECK (name <> '' AND length(name) <= 100),
    -- threshold: a reading crosses a limit; offline: the device's status is `offline`;
    -- stale: no reading of the attribute for stale_after_s seconds
    kind          text NOT NULL CHECK (kind IN ('threshold', 'offline', 'stale')),
    -- which devices: an MQTT filter over <site>/<room>/<device> (`+` one level, `#` the rest),
    -- e.g. 'oficina/servidores/+' or 'planta/#' or '#'
    devices       text NOT NULL CHECK (devices <> '' AND length(devices) <= 400),
    -- threshold and stale: the attribute name, or '+' for every attribute; offline: NULL
    attribute     text CHECK (attribute <> ''),
    -- threshold only. above: value > high; below: value < low; outside: value < low or
    -- value > high; inside: low <= value <= high
    condition     text CHECK (condition IN ('above', 'below', 'outside', 'inside')),
    low           double precision,
    high          double precision,
    -- how far back past the limit a value must go before the alert clears (deadband)
    hysteresis    double precision NOT NULL DEFAULT 0 CHECK (hysteresis >= 0),
    -- the condition must hold this long before the alert is raised / be gone this long
    -- before it clears
    on_delay_s    double precision NOT NULL DEFAULT 0 CHECK (on_delay_s >= 0),
    off_delay_s   double precision NOT NULL DEFAULT 0 CHECK (off_delay_s >= 0),
    stale_after_s double precision CHECK (stale_after_s > 0),
    severity      text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    -- {rule} {device} {site} {room} {attribute} {value} {unit} {severity} {topic} are replaced
    message       text NOT NULL DEFAULT '',
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (kind <> 'threshold' OR (attribute IS NOT NULL AND condition IS NOT NULL AND CASE condition
        WHEN 'above' THEN high IS NOT NULL
        WHEN 'below' THEN low IS NOT NULL
        ELSE low IS NOT NULL AND high IS NOT NULL AND low <= high END)),
    -- an `outside` alert clears between low + hysteresis and high - hysteresis: keep room
    CHECK (condition IS DISTINCT FROM 'outside' OR high - low >= 2 * hysteresis),
    CHECK (kind <> 'stale' OR (attribute IS NOT NULL AND stale_after_s IS NOT NULL)),
    CHECK (kind <> 'offline' OR attribute IS NULL)
);

-- One row per alert: raised, maybe acknowledged, cleared. An alert is open until cleared;
-- a cleared alert nobody acknowledged stays in the portal's list until someone does.
CREATE TABLE alerts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id       integer REFERENCES alert_rules (id) ON DELETE SET NULL,
    rule_name     text NOT NULL,     -- kept: the rule may be renamed or deleted later
    site          text NOT NULL,
    room          text NOT NULL,
    device        text NOT NULL,
    attribute     text NOT NULL,     -- 'status' for offline alerts
    severity      text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message       text NOT NULL,
    raised_at     timestamptz NOT NULL DEFAULT now(),
    raised_value  text,
    acked_at      timestamptz,
    acked_by      text,              -- the portal user's name
    cleared_at    timestamptz,
    cleared_value text,
    flapping      boolean NOT NULL DEFAULT false,
    CHECK ((acked_at IS NULL) = (acked_by IS NULL))
);
-- at most one open alert per rule and attribute: a second raise is the same alert
CREATE UNIQUE INDEX alerts_one_open ON alerts (rule_id, site, room, device, attribute)
    WHERE cleared_at IS NULL;
-- the portal's list: open ones, and cleared ones not yet acknowledged
CREATE INDEX alerts_needing_attention ON alerts (raised_at DESC)
    WHERE cleared_at IS NULL OR acked_at IS NULL;
CREATE INDEX alerts_raised_at ON alerts (raised_at DESC);
-- deleting a rule sets rule_id NULL on its alerts: without this it would scan them all
CREATE INDEX alerts_rule ON alerts (rule_id);

-- What happened to each alert, in order: its history.
CREATE TABLE alert_events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id  bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at        timestamptz NOT NULL DEFAULT now(),
    kind      text NOT NULL CHECK (kind IN ('raised', 'acknowledged', 'cleared', 'notified',
                                            'suppressed', 'flapping')),
    value     text,                  -- the reading that raised or cleared it
    actor     text,                  -- who acknowledged; the channel notified
    detail    text
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, at);

-- Where notifications go, per severity. Node-RED reads the enabled ones with the rules.
CREATE TABLE notification_channels (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CHECK (name <> '' AND length(name) <= 100),
    kind        text NOT NULL CHECK (kind IN ('email', 'webhook', 'mqtt')),
    -- email: one or more addresses, comma-separated; webhook: an http(s) URL; mqtt: a topic
    target      text NOT NULL CHECK (target <> '' AND length(target) <= 1000),
    severities  text[] NOT NULL CHECK (cardinality(severities) > 0
                    AND severities <@ ARRAY['info', 'warning', 'critical']::text[]),
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
