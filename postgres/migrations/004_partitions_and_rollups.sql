-- 004: measurements partitioned by day, per-minute rollups, retention (doc/history.md).
--
-- * Retention drops whole partitions (a catalog change, no mass DELETE): measurements by UTC
--   day, the rollups by UTC month.
-- * measurements_minute: count, sum, min and max of each attribute's numeric readings per
--   minute; group_minute: the same per (site, room, attribute name), per (site, attribute
--   name) and per attribute name over every site, with the device that had the max and the
--   one that had the min. Charts and aggregates over long ranges read these, never raw rows.
-- * How rollups keep up: every ingest batch appends the minutes it wrote to
--   rollup_invalidations (one or two rows per batch, no unique key, so two workers never
--   wait on each other). refresh_rollups() — run every few seconds by the maintenance node
--   of flows/octopus.json — deletes the invalidations of minutes that are over and
--   recomputes those minutes from raw rows, in one transaction. A minute that has an
--   invalidation is read from raw rows by the queries (webapp/octopus_portal/history.py),
--   one that has none from the rollups: a query sees exactly the stored rows either way,
--   late readings (an old `ts`) included.

-- 1. Partitions -----------------------------------------------------------------------------

-- Minute buckets independent of the session's time zone (date_trunc would follow it).
CREATE FUNCTION minute_of(ts timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN date_bin('1 minute', ts, timestamptz '2000-01-01 00:00:00+00');

-- Making or dropping a partition locks the whole parent table (ACCESS EXCLUSIVE) and so
-- waits for every query reading it, a long CSV export included; while it waits, every new
-- query and insert on the table queues behind it. So these steps give up after a second
-- (lock_not_available, SQLSTATE 55P03) and are tried again later: the
-- maintenance run at its next tick, an ingest batch by its retry with backoff.
CREATE FUNCTION with_partition_lock_timeout(statement text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    previous text := current_setting('lock_timeout');
BEGIN
    PERFORM set_config('lock_timeout', '1s', true);
    EXECUTE statement;
    PERFORM set_config('lock_timeout', previous, true);
END
$$;

-- The partition of `parent` holding `at`: <parent>_YYYYMMDD (period 'day') or
-- <parent>_YYYYMM ('month'), UTC bounds. Made if missing; two sessions making it at once
-- are fine. Returns true when it made one.
CREATE FUNCTION ensure_partition(parent text, period text, at timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    lower timestamp := date_trunc(period, at AT TIME ZONE 'UTC');
    name text := parent || '_' || to_char(lower, CASE period WHEN 'day' THEN 'YYYYMMDD' ELSE 'YYYYMM' END);
BEGIN
    IF period NOT IN ('day', 'month') THEN
        RAISE EXCEPTION 'ensure_partition: period must be day or month, not %', period;
    END IF;
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    BEGIN
        PERFORM with_partition_lock_timeout(format(
            'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', name, parent,
            lower AT TIME ZONE 'UTC', (lower + ('1 ' || period)::interval) AT TIME ZONE 'UTC'));
    EXCEPTION WHEN duplicate_table OR unique_violation THEN
        RETURN false;  -- another session made it first
    END;
    IF parent IN ('measurements_minute', 'group_minute') THEN
        -- Charts read rollups with index-only scans, which skip the table only for pages
        -- VACUUM has marked all-visible. Autovacuum's default for new rows (20 % of the
        -- table) would wait days on a monthly partition: every 100,000 new rows instead (20
        -- minutes of 5,000 attributes). PostgreSQL 15 takes this per partition only.
        EXECUTE format('ALTER TABLE %I SET (autovacuum_vacuum_insert_threshold = 100000, '
                       'autovacuum_vacuum_insert_scale_factor = 0)', name);
    END IF;
    RETURN true;
END
$$;

-- Drop the partitions of `parent` that hold only times before `cutoff`; their names.
CREATE FUNCTION drop_partitions_before(parent text, period text, cutoff timestamptz) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped text[] := '{}';
    fmt text := CASE period WHEN 'day' THEN 'YYYYMMDD' ELSE 'YYYYMM' END;
BEGIN
    FOR part IN
        SELECT c.relname
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = parent::regclass
           AND c.relname ~ ('^' || parent || '_\d+$')
         ORDER BY c.relname
    LOOP
        IF (to_date(substr(part.relname, length(parent) + 2), fmt)::timestamp
            + ('1 ' || period)::interval) AT TIME ZONE 'UTC' <= cutoff THEN
            PERFORM with_partition_lock_timeout(format('DROP TABLE %I', part.relname));
            dropped := dropped || part.relname::text;
        END IF;
    END LOOP;
    RETURN dropped;
END
$$;

-- measurements becomes a partitioned table with the same columns and key; existing rows move.
ALTER TABLE measurements RENAME TO measurements_before_004;
ALTER INDEX measurements_pkey RENAME TO measurements_before_004_pkey;

CREATE TABLE measurements (
    attribute_id integer NOT NULL,
    ts           timestamptz NOT NULL,
    num          double precision,
    txt          text,
    PRIMARY KEY (attribute_id, ts)
) PARTITION BY RANGE (ts);
-- refresh_rollups() reads a minute of every attribute: readings arrive in time order, so a
-- BRIN index finds a minute's pages for a fraction of a btree's upkeep.
CREATE INDEX measurements_ts_brin ON measurements USING brin (ts);

SELECT ensure_partition('measurements', 'day', day)
  FROM (SELECT DISTINCT date_trunc('day', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day
          FROM measurements_before_004) AS days;
INSERT INTO measurements SELECT attribute_id, ts, num, txt FROM measurements_before_004;

-- 2. Rollups ---------------------------------------------------------------------------------

-- No JIT compilation for Octopus's sessions (portal, Node-RED): the history queries' plans
-- estimate their branch for minutes not yet rolled up at millions of rows when it reads
-- none, which passes jit_above_cost, and compiling then costs 0.5-1 s per call, 20-50 times
-- the query (measured: a site's 24-h aggregate 608-816 ms with JIT, 13 ms without). Any
-- role may set its own defaults; they apply to its next sessions.
ALTER ROLE CURRENT_USER SET jit = off;

-- The key carries the values (INCLUDE): refresh_rollups() writes a minute of every
-- attribute at a time, so one attribute's minutes each sit on a page of their own, and a
-- 7-day chart would read 10,080 table pages; from the index alone it reads ~100 (measured
-- on 100 M readings: 815 → 39 ms for an attribute not charted lately, doc/performance.md).
CREATE TABLE measurements_minute (
    attribute_id integer NOT NULL,
    minute       timestamptz NOT NULL,
    n            integer NOT NULL,           -- numeric readings in the minute
    sum          double precision NOT NULL,
    min          double precision NOT NULL,
    max          double precision NOT NULL,
    PRIMARY KEY (attribute_id, minute) INCLUDE (n, sum, min, max)
) PARTITION BY RANGE (minute);

-- site '' = every site; room '' = every room (empty topic levels are rejects, so '' is no
-- real site or room). The device with the max or min: the highest id among equals.
CREATE TABLE group_minute (
    site          text NOT NULL,
    room          text NOT NULL,
    attribute     text NOT NULL,
    minute        timestamptz NOT NULL,
    n             integer NOT NULL,
    sum           double precision NOT NULL,
    min           double precision NOT NULL,
    max           double precision NOT NULL,
    min_device_id integer NOT NULL,
    max_device_id integer NOT NULL,
    PRIMARY KEY (site, room, attribute, minute)
) PARTITION BY RANGE (minute);

-- Minutes written since their rollups were last computed. Append-only between refreshes.
CREATE TABLE rollup_invalidations (
    minute timestamptz NOT NULL
);
CREATE INDEX rollup_invalidations_minute ON rollup_invalidations (minute);

INSERT INTO rollup_invalidations (minute)
SELECT DISTINCT minute_of(ts) FROM measurements_before_004 WHERE num IS NOT NULL;
DROP TABLE measurements_before_004;

-- Recompute the rollups of every minute that has an invalidation and is over; those
-- invalidations go in the same transaction. Invalidations of batches not yet committed are
-- not visible here, so they stay for the next run: no row is ever left out. Returns the
-- number of minutes recomputed, or -1 if another session is refreshing.
CREATE FUNCTION refresh_rollups() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    minutes timestamptz[];
    m timestamptz;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7242001) THEN
        RETURN -1;
    END IF;
    WITH gone AS (
        DELETE FROM rollup_invalidations WHERE minute < minute_of(now()) RETURNING minute
    )
    SELECT array_agg(DISTINCT minute ORDER BY minute) INTO minutes FROM gone;
    IF minutes IS NULL THEN
        RETURN 0;
    END IF;

    FOREACH m IN ARRAY minutes LOOP
        PERFORM ensure_partition('measurements_minute', 'month', m);
        PERFORM ensure_partition('group_minute', 'month', m);
    END LOOP;
    DELETE FROM measurements_minute WHERE minute = ANY (minutes);
    DELETE FROM group_minute WHERE minute = ANY (minutes);

    -- One minute at a time: each is a BRIN range of one partition.
    FOREACH m IN ARRAY minutes LOOP
        INSERT INTO measurements_minute (attribute_id, minute, n, sum, min, max)
        SELECT attribute_id, m, count(*), sum(num), min(num), max(num)
          FROM measurements
         WHERE ts >= m AND ts < m + interval '1 minute' AND num IS NOT NULL
         GROUP BY attribute_id;
    END LOOP;

    INSERT INTO group_minute (site, room, attribute, minute, n, sum, min, max,
                              min_device_id, max_device_id)
    SELECT coalesce(d.site, ''), coalesce(d.room, ''), a.name, r.minute,
           sum(r.n), sum(r.sum), min(r.min), max(r.max),
           -- array comparison: the lowest [min, device] has the lowest min
           (min(ARRAY[r.min, -d.id::float8]))[2] * -1, (max(ARRAY[r.max, d.id::float8]))[2]
      FROM measurements_minute r
      JOIN attributes a ON a.id = r.attribute_id
      JOIN devices d ON d.id = a.device_id
     WHERE r.minute = ANY (minutes)
     GROUP BY GROUPING SETS ((d.site, d.room, a.name, r.minute),
                             (d.site, a.name, r.minute),
                             (a.name, r.minute));
    RETURN cardinality(minutes);
END
$$;

-- 3. Maintenance -----------------------------------------------------------------------------

-- Everything that keeps the tables in shape, for one periodic call (the maintenance node):
-- rollups brought up to date, partitions made ahead of time (today and the next two days,
-- this month and the next) so the ingest rarely has to, and partitions past retention
-- dropped. Retention in days; 0 or less keeps everything. Skipped while another session
-- runs it. Partition steps that cannot get their lock within a second (a long query is
-- reading) are left for a later run: `partitions_busy` says so. Returns what it did, for the
-- node's status and the logs.
CREATE FUNCTION run_maintenance(raw_days integer, rollup_days integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    refreshed integer;
    dropped text[] := '{}';
    made integer := 0;
    busy boolean := false;
    i integer;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7242002) THEN
        RETURN jsonb_build_object('skipped', true);
    END IF;
    refreshed := refresh_rollups();
    BEGIN
        FOR i IN 0..2 LOOP
            made := made + ensure_partition('measurements', 'day', now() + i * interval '1 day')::integer;
        END LOOP;
        FOR i IN 0..1 LOOP
            made := made + ensure_partition('measurements_minute', 'month', now() + i * interval '1 month')::integer
                         + ensure_partition('group_minute', 'month', now() + i * interval '1 month')::integer;
        END LOOP;
        IF raw_days > 0 THEN
            dropped := dropped || drop_partitions_before('measurements', 'day', now() - raw_days * interval '1 day');
        END IF;
        IF rollup_days > 0 THEN
            dropped := dropped
                || drop_partitions_before('measurements_minute', 'month', now() - rollup_days * interval '1 day')
                || drop_partitions_before('group_minute', 'month', now() - rollup_days * interval '1 day');
        END IF;
    EXCEPTION WHEN lock_not_available THEN
        -- what this block made or dropped is undone with it; the rollups above stay
        busy := true;
        made := 0;
        dropped := '{}';
    END;
    RETURN jsonb_build_object('refreshed_minutes', refreshed, 'partitions_made', made,
                              'partitions_dropped', to_jsonb(dropped), 'partitions_busy', busy);
END
$$;

SELECT run_maintenance(0, 0);

-- 4. The ingest batch: partitions for the days it writes, invalidations for its minutes ----

CREATE OR REPLACE FUNCTION ingest_batch(
    m_site text[], m_room text[], m_device text[], m_attribute text[],
    m_ts timestamptz[], m_num double precision[], m_txt text[], m_unit text[],
    s_site text[], s_room text[], s_device text[], s_status text[], s_ts timestamptz[],
    r_topic text[], r_reason text[], r_payload bytea[], r_size integer[]
) RETURNS integer  -- measurements actually inserted (redeliveries excluded)
LANGUAGE plpgsql AS $$
DECLARE
    inserted integer := 0;
BEGIN
    INSERT INTO devices AS d (site, room, name)
    SELECT site, room, device
      FROM (SELECT * FROM unnest(m_site, m_room, m_device) AS t(site, room, device)
            UNION
            SELECT * FROM unnest(s_site, s_room, s_device)) AS seen
     ORDER BY site, room, device
    ON CONFLICT (site, room, name) DO UPDATE SET last_seen = now();

    IF cardinality(s_site) > 0 THEN
        -- the newest status per device wins, and an older one never overwrites a newer one
        UPDATE devices AS d SET status = s.status, status_at = s.ts
          FROM (SELECT DISTINCT ON (site, room, device) site, room, device, status, ts
                  FROM unnest(s_site, s_room, s_device, s_status, s_ts)
                       AS t(site, room, device, status, ts)
                 ORDER BY site, room, device, ts DESC) AS s
         WHERE (d.site, d.room, d.name) = (s.site, s.room, s.device)
           AND (d.status_at IS NULL OR d.status_at <= s.ts);
    END IF;

    IF cardinality(m_site) > 0 THEN
        -- Two statements, not one upsert feeding the insert through a CTE: see 001.
        INSERT INTO attributes AS a (device_id, name, unit, last_ts, last_num, last_txt)
        SELECT DISTINCT ON (d.id, t.attribute) d.id, t.attribute, t.unit, t.ts, t.num, t.txt
          FROM unnest(m_site, m_room, m_device, m_attribute, m_ts, m_num, m_txt, m_unit)
               AS t(site, room, device, attribute, ts, num, txt, unit)
          JOIN devices d ON (d.site, d.room, d.name) = (t.site, t.room, t.device)
         ORDER BY d.id, t.attribute, t.ts DESC
        ON CONFLICT (device_id, name) DO UPDATE SET
            last_seen = now(),
            unit      = COALESCE(EXCLUDED.unit, a.unit),
            last_num  = CASE WHEN a.last_ts IS NULL OR EXCLUDED.last_ts >= a.last_ts
                             THEN EXCLUDED.last_num ELSE a.last_num END,
            last_txt  = CASE WHEN a.last_ts IS NULL OR EXCLUDED.last_ts >= a.last_ts
                             THEN EXCLUDED.last_txt ELSE a.last_txt END,
            last_ts   = GREATEST(a.last_ts, EXCLUDED.last_ts);

        -- Usually today's partition, made ahead by run_maintenance(); an old or a
        -- just-past-midnight ts may need one made here. A lookup per distinct day.
        PERFORM ensure_partition('measurements', 'day', day)
           FROM (SELECT DISTINCT date_trunc('day', ts, 'UTC') AS day FROM unnest(m_ts) AS t(ts)) AS days;

        INSERT INTO measurements (attribute_id, ts, num, txt)
        SELECT a.id, t.ts, t.num, t.txt
          FROM unnest(m_site, m_room, m_device, m_attribute, m_ts, m_num, m_txt)
               AS t(site, room, device, attribute, ts, num, txt)
          JOIN devices d ON (d.site, d.room, d.name) = (t.site, t.room, t.device)
          JOIN attributes a ON a.device_id = d.id AND a.name = t.attribute
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS inserted = ROW_COUNT;

        IF inserted > 0 THEN
            INSERT INTO rollup_invalidations (minute)
            SELECT DISTINCT minute_of(ts) FROM unnest(m_ts, m_num) AS t(ts, num) WHERE num IS NOT NULL;
        END IF;
    END IF;

    IF cardinality(r_topic) > 0 THEN
        INSERT INTO rejects (topic, reason, payload, payload_size)
        SELECT * FROM unnest(r_topic, r_reason, r_payload, r_size);
    END IF;

    RETURN inserted;
END
$$;
