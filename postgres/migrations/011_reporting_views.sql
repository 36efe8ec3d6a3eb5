-- 011: what dashboards read (Grafana, grafana/; doc/operations.md, "Grafana"), for the
-- read-only role octopus_reader (010).
--
-- * minute_series() and group_minute_series(): per-minute count, sum, min and max of the
--   numeric readings of the attributes (or the groups) asked for, exact as the portal's
--   history queries are (doc/history.md): a minute still pending in rollup_invalidations is
--   computed from raw readings, every other minute is read from measurements_minute or
--   group_minute. Functions, not views: a view over every attribute is planned before the
--   dashboard's filter on names reaches the rollup index (measured on 1,000 attributes with
--   3 days of rollups: a 2-day chart of 13 attributes read the 2.9 M rollup rows of all of
--   them, 2.1 s); here the attributes are found first and the rollups are read by
--   (attribute_id, minute) through the index (87 ms).
--   Plain SQL, run with the caller's rights: they read only what octopus_reader may read.
-- * reject_log and modbus_poll_status: views, so that the reader sees these tables without
--   the columns it must not: a reject's payload (anything a device sent, credentials by
--   mistake included) and a Modbus device's address, port and unit id.
--
-- 010's rule holds: every object here is granted below, one by one, and
-- tests/launcher/test_database_roles.py lists each with its decision.

-- 1. Per attribute and minute ---------------------------------------------------------------

-- The numeric readings per attribute and minute, for the minutes from the one holding
-- p_from to p_to inclusive (as Grafana's $__timeFilter: BETWEEN), of the attributes that
-- match every filter given: attribute names, sites, rooms, device names, device ids (NULL:
-- any). Rows: minute, the device and attribute, and n, sum, min, max (mean = sum / n).
CREATE FUNCTION minute_series(
    p_from timestamptz, p_to timestamptz,
    p_attributes text[] DEFAULT NULL, p_sites text[] DEFAULT NULL,
    p_rooms text[] DEFAULT NULL, p_devices text[] DEFAULT NULL,
    p_device_ids integer[] DEFAULT NULL
) RETURNS TABLE (minute timestamptz, device_id integer, site text, room text, device text,
                 attribute text, unit text, n bigint, sum double precision,
                 min double precision, max double precision)
LANGUAGE sql STABLE AS $$
WITH chosen AS (
    SELECT a.id, a.device_id, d.site, d.room, d.name AS device, a.name AS attribute, a.unit
      FROM attributes a JOIN devices d ON d.id = a.device_id
     WHERE (p_attributes IS NULL OR a.name = ANY (p_attributes))
       AND (p_sites IS NULL OR d.site = ANY (p_sites))
       AND (p_rooms IS NULL OR d.room = ANY (p_rooms))
       AND (p_devices IS NULL OR d.name = ANY (p_devices))
       AND (p_device_ids IS NULL OR d.id = ANY (p_device_ids))
), pending AS (
    SELECT DISTINCT minute FROM rollup_invalidations
     WHERE minute >= minute_of(p_from) AND minute <= p_to
), per_attribute AS (
    -- ARRAY(...): one value for the whole query, so the rollup index is searched by it
    SELECT r.attribute_id, r.minute, r.n::bigint AS n, r.sum, r.min, r.max
      FROM measurements_minute r
     WHERE r.attribute_id = ANY (ARRAY(SELECT id FROM chosen))
       AND r.minute >= minute_of(p_from) AND r.minute <= p_to
       AND r.minute NOT IN (SELECT minute FROM pending)
    UNION ALL
    SELECT m.attribute_id, p.minute, count(*), sum(m.num), min(m.num), max(m.num)
      FROM pending p
      JOIN measurements m ON m.ts >= p.minute AND m.ts < p.minute + interval '1 minute'
     WHERE m.attribute_id = ANY (ARRAY(SELECT id FROM chosen)) AND m.num IS NOT NULL
     GROUP BY m.attribute_id, p.minute
)
SELECT r.minute, c.device_id, c.site, c.room, c.device, c.attribute, c.unit,
       r.n, r.sum, r.min, r.max
  FROM per_attribute r JOIN chosen c ON c.id = r.attribute_id
$$;

-- 2. Per room, site or everything, and minute --------------------------------------------

-- The same over groups of devices, from group_minute: p_per 'room' gives one row per
-- (site, room, attribute name, minute), 'site' one per site (room ''), 'all' one over every
-- site (site and room ''), with the device that had the min and the one that had the max
-- (`site/room/name`; the highest id among equals, as in group_minute). Filters as
-- minute_series(); a group is in when its site and room match them. Any other p_per: no
-- rows.
CREATE FUNCTION group_minute_series(
    p_from timestamptz, p_to timestamptz,
    p_attributes text[] DEFAULT NULL, p_sites text[] DEFAULT NULL,
    p_rooms text[] DEFAULT NULL, p_per text DEFAULT 'room'
) RETURNS TABLE (minute timestamptz, site text, room text, attribute text, n bigint,
                 sum double precision, min double precision, max double precision,
                 min_device text, max_device text)
LANGUAGE sql STABLE AS $$
WITH chosen AS (
    SELECT a.id, a.name AS attribute, d.id AS device_id,
           CASE WHEN p_per IN ('room', 'site') THEN d.site ELSE '' END AS site,
           CASE WHEN p_per = 'room' THEN d.room ELSE '' END AS room
      FROM attributes a JOIN devices d ON d.id = a.device_id
     WHERE p_per IN ('room', 'site', 'all')
       AND (p_attributes IS NULL OR a.name = ANY (p_attributes))
       AND (p_sites IS NULL OR d.site = ANY (p_sites))
       AND (p_rooms IS NULL OR d.room = ANY (p_rooms))
), pending AS (
    SELECT DISTINCT minute FROM rollup_invalidations
     WHERE minute >= minute_of(p_from) AND minute <= p_to
), per_group AS (
    SELECT g.site, g.room, g.attribute, g.minute, g.n::bigint AS n, g.sum, g.min, g.max,
           g.min_device_id, g.max_device_id
      FROM group_minute g
     WHERE CASE p_per WHEN 'room' THEN g.site <> '' AND g.room <> ''
                      WHEN 'site' THEN g.site <> '' AND g.room = ''
                      WHEN 'all' THEN g.site = '' AND g.room = ''
           END
       AND (p_attributes IS NULL OR g.attribute = ANY (p_attributes))
       AND (p_sites IS NULL OR g.site = ANY (p_sites))
       AND (p_rooms IS NULL OR g.room = ANY (p_rooms))
       AND g.minute >= minute_of(p_from) AND g.minute <= p_to
       AND g.minute NOT IN (SELECT minute FROM pending)
    UNION ALL
    SELECT c.site, c.room, c.attribute, p.minute, count(*), sum(m.num), min(m.num), max(m.num),
           -- array comparison, as in refresh_rollups(): the lowest [min, -device] has the min
           ((min(ARRAY[m.num, -c.device_id::float8]))[2] * -1)::integer,
           ((max(ARRAY[m.num, c.device_id::float8]))[2])::integer
      FROM pending p
      JOIN measurements m ON m.ts >= p.minute AND m.ts < p.minute + interval '1 minute'
      JOIN chosen c ON c.id = m.attribute_id
     WHERE m.attribute_id = ANY (ARRAY(SELECT id FROM chosen)) AND m.num IS NOT NULL
     GROUP BY c.site, c.room, c.attribute, p.minute
)
SELECT g.minute, g.site, g.room, g.attribute, g.n, g.sum, g.min, g.max,
       dmin.site || '/' || dmin.room || '/' || dmin.name,
       dmax.site || '/' || dmax.room || '/' || dmax.name
  FROM per_group g
  LEFT JOIN devices dmin ON dmin.id = g.min_device_id
  LEFT JOIN devices dmax ON dmax.id = g.max_device_id
$$;

-- 3. Platform health ------------------------------------------------------------------------

-- Rejects without their payload.
CREATE VIEW reject_log AS
SELECT id, received_at, topic, reason, payload_size FROM rejects;

-- What the Modbus polling sees per device (006), without where the device is on the
-- network. last_error is the poller's own message (e.g. `timeout: ...`, `connection: ...`)
-- and may name the device's address.
CREATE VIEW modbus_poll_status AS
SELECT d.id AS device_id, d.site, d.room, d.name AS device, d.profile, d.poll_interval_ms,
       d.enabled, s.worker, s.since, s.status, s.polls, s.ok, s.timeouts, s.exceptions,
       s.connection_errors, s.garbage, s.overflows, s.consecutive_failures, s.last_ok_at,
       s.last_error, s.last_error_at, s.late_ms_max, s.updated_at
  FROM modbus_devices d LEFT JOIN modbus_poll_stats s ON s.device_id = d.id;

-- 4. Grants: dashboards (octopus_reader) only ----------------------------------------------

GRANT EXECUTE ON FUNCTION minute_series, group_minute_series TO octopus_reader;
GRANT SELECT ON reject_log, modbus_poll_status TO octopus_reader;
