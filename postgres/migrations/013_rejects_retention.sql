-- 013: rejects are kept for a retention period too (RETENTION_REJECTS_DAYS, doc/history.md).
--
-- Until now every reject was kept for ever: a device that sends malformed payloads keeps
-- adding rows of up to 4 KiB each (the payload's first 4 KiB), 350 MB a day at 1,000 a
-- second, until the disk is full and the database, and with it the ingest, stops.
-- run_maintenance() takes a third retention, in days, for `rejects` (0 or less: for ever,
-- which is also the default, so that callers of the two-argument form keep what they
-- asked for). `rejects` is not partitioned: its rows are few next to the readings, and a
-- run deletes the expired ones oldest first, at most REJECTS_PER_RUN (100,000) at a time
-- through `rejects_received_at`, so that one run after a long outage of the upkeep does not
-- hold its transaction open for minutes; the next runs, every MAINTENANCE_INTERVAL_S, take
-- the rest. `rejects_deleted` in the result says how many went.

DROP FUNCTION run_maintenance(integer, integer);

CREATE FUNCTION run_maintenance(raw_days integer, rollup_days integer,
                                reject_days integer DEFAULT 0) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    refreshed integer;
    dropped text[] := '{}';
    made integer := 0;
    busy boolean := false;
    rejects_gone integer := 0;
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
    IF reject_days > 0 THEN
        -- REJECTS_PER_RUN: see the top of this file
        DELETE FROM rejects WHERE id IN (
            SELECT id FROM rejects WHERE received_at < now() - reject_days * interval '1 day'
             ORDER BY received_at LIMIT 100000);
        GET DIAGNOSTICS rejects_gone = ROW_COUNT;
    END IF;
    RETURN jsonb_build_object('refreshed_minutes', refreshed, 'partitions_made', made,
                              'partitions_dropped', to_jsonb(dropped), 'partitions_busy', busy,
                              'rejects_deleted', rejects_gone);
END
$$;

-- As 010 set it up: the owner's rights (it drops partitions and deletes rejects, which
-- Node-RED's role may not do itself), for Node-RED's role only.
SELECT run_as_owner('run_maintenance');
GRANT EXECUTE ON FUNCTION run_maintenance TO octopus_flows;
