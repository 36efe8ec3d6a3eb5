-- 012: the ingest's batch names each attribute once (doc/ingest.md, "3. Batches").
--
-- Until now a batch sent site, room, device and attribute as text for every reading and the
-- database found the attribute of each by joining on those four texts; and measurements
-- were inserted with ON CONFLICT DO NOTHING, a speculative insertion per row (an extra index
-- probe and an extra WAL record each), to make a redelivery harmless. Measured on the
-- benchmark's batches (2,000 readings of 400 attributes), PostgreSQL's CPU per reading:
-- 13.2–13.9 µs before, 9.0–10.1 µs with both changes below, in interleaved runs here
-- (doc/performance.md).
--
-- * ingest_keyed_batch(): the batch's distinct attributes once each (k_*: their levels, and
--   the newest reading of each for the last-value cache), then per reading only the
--   attribute's position in k_* (m_key, from 1), its time and value.
-- * The measurements are inserted plainly; only a batch that meets a row stored already (a
--   redelivery, or a device sending one reading twice) is inserted again, in the same
--   transaction, with ON CONFLICT DO NOTHING. The first attempt is undone with its
--   subtransaction, so the outcome is the same as before.
-- * ingest_batch() keeps its arguments (one row per reading: tools, tests and SQL users) and
--   hands its batch to ingest_keyed_batch(): one implementation.
-- * ingest_keyed_batch_with_receipt() replaces ingest_batch_with_receipt(), which only the
--   ingest node called.

CREATE FUNCTION ingest_keyed_batch(
    k_site text[], k_room text[], k_device text[], k_attribute text[], k_unit text[],
    k_ts timestamptz[], k_num double precision[], k_txt text[],
    m_key integer[], m_ts timestamptz[], m_num double precision[], m_txt text[],
    s_site text[], s_room text[], s_device text[], s_status text[], s_ts timestamptz[],
    r_topic text[], r_reason text[], r_payload bytea[], r_size integer[]
) RETURNS integer  -- measurements actually inserted (redeliveries excluded)
LANGUAGE plpgsql AS $$
DECLARE
    inserted integer := 0;
    ids integer[];  -- attribute id of each k_* entry, in k_* order
BEGIN
    -- in key order, so that two workers sharing the load cannot deadlock on each other's rows
    INSERT INTO devices AS d (site, room, name)
    SELECT site, room, device
      FROM (SELECT * FROM unnest(k_site, k_room, k_device) AS t(site, room, device)
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

    IF cardinality(m_key) > 0 THEN
        -- The newest reading of each attribute becomes its last value, unless a newer one is
        -- stored already. DISTINCT ON: an attribute named twice in k_* must not make the
        -- upsert touch a row twice (an error no retry could get past).
        INSERT INTO attributes AS a (device_id, name, unit, last_ts, last_num, last_txt)
        SELECT DISTINCT ON (d.id, t.attribute) d.id, t.attribute, t.unit, t.ts, t.num, t.txt
          FROM unnest(k_site, k_room, k_device, k_attribute, k_ts, k_num, k_txt, k_unit)
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

        -- A LEFT JOIN keeps every position: an entry without its row gives a NULL id, which
        -- the insert below refuses, rather than shifting the ids of the entries after it.
        SELECT array_agg(a.id ORDER BY t.position) INTO ids
          FROM unnest(k_site, k_room, k_device, k_attribute) WITH ORDINALITY
               AS t(site, room, device, attribute, position)
          LEFT JOIN devices d ON (d.site, d.room, d.name) = (t.site, t.room, t.device)
          LEFT JOIN attributes a ON a.device_id = d.id AND a.name = t.attribute;

        -- Usually today's partition, made ahead by run_maintenance(); an old or a
        -- just-past-midnight ts may need one made here. A lookup per distinct day.
        PERFORM ensure_partition('measurements', 'day', day)
           FROM (SELECT DISTINCT date_trunc('day', ts, 'UTC') AS day FROM unnest(m_ts) AS t(ts)) AS days;

        -- ids[key] is NULL for a key outside k_*: the NOT NULL of attribute_id refuses it
        -- (a data error: the ingest then writes the batch's messages one by one).
        BEGIN
            INSERT INTO measurements (attribute_id, ts, num, txt)
            SELECT ids[t.key], t.ts, t.num, t.txt
              FROM unnest(m_key, m_ts, m_num, m_txt) AS t(key, ts, num, txt);
            GET DIAGNOSTICS inserted = ROW_COUNT;
        EXCEPTION WHEN unique_violation THEN
            INSERT INTO measurements (attribute_id, ts, num, txt)
            SELECT ids[t.key], t.ts, t.num, t.txt
              FROM unnest(m_key, m_ts, m_num, m_txt) AS t(key, ts, num, txt)
            ON CONFLICT DO NOTHING;
            GET DIAGNOSTICS inserted = ROW_COUNT;
        END;

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

-- The batch and its receipt in one statement, hence one transaction (as 002's
-- ingest_batch_with_receipt): the receipt exists if and only if the batch is committed.
CREATE FUNCTION ingest_keyed_batch_with_receipt(
    k_site text[], k_room text[], k_device text[], k_attribute text[], k_unit text[],
    k_ts timestamptz[], k_num double precision[], k_txt text[],
    m_key integer[], m_ts timestamptz[], m_num double precision[], m_txt text[],
    s_site text[], s_room text[], s_device text[], s_status text[], s_ts timestamptz[],
    r_topic text[], r_reason text[], r_payload bytea[], r_size integer[],
    p_worker text, p_batch_seq bigint, p_keep_from bigint,
    p_packet_ids integer[], p_hashes bigint[]
) RETURNS integer  -- measurements actually inserted, as ingest_keyed_batch
LANGUAGE plpgsql AS $$
DECLARE
    inserted integer;
BEGIN
    inserted := ingest_keyed_batch(k_site, k_room, k_device, k_attribute, k_unit, k_ts, k_num, k_txt,
                                   m_key, m_ts, m_num, m_txt,
                                   s_site, s_room, s_device, s_status, s_ts,
                                   r_topic, r_reason, r_payload, r_size);
    DELETE FROM ingest_receipts WHERE worker = p_worker AND batch_seq < p_keep_from;
    IF cardinality(p_packet_ids) > 0 THEN
        INSERT INTO ingest_receipts (worker, batch_seq, packet_ids, hashes)
        VALUES (p_worker, p_batch_seq, p_packet_ids, p_hashes);
    END IF;
    RETURN inserted;
END
$$;

DROP FUNCTION ingest_batch_with_receipt;

-- One row per reading, as before; the attributes are numbered here (in key order) and the
-- batch goes to ingest_keyed_batch.
CREATE OR REPLACE FUNCTION ingest_batch(
    m_site text[], m_room text[], m_device text[], m_attribute text[],
    m_ts timestamptz[], m_num double precision[], m_txt text[], m_unit text[],
    s_site text[], s_room text[], s_device text[], s_status text[], s_ts timestamptz[],
    r_topic text[], r_reason text[], r_payload bytea[], r_size integer[]
) RETURNS integer  -- measurements actually inserted (redeliveries excluded)
LANGUAGE plpgsql AS $$
DECLARE
    k record;
    keys integer[];
BEGIN
    SELECT array_agg(site ORDER BY key) AS site, array_agg(room ORDER BY key) AS room,
           array_agg(device ORDER BY key) AS device, array_agg(attribute ORDER BY key) AS attribute,
           array_agg(unit ORDER BY key) AS unit, array_agg(ts ORDER BY key) AS ts,
           array_agg(num ORDER BY key) AS num, array_agg(txt ORDER BY key) AS txt
      INTO k
      FROM (SELECT row_number() OVER (ORDER BY site, room, device, attribute) AS key, *
              FROM (SELECT DISTINCT ON (site, room, device, attribute)
                           site, room, device, attribute, unit, ts, num, txt
                      FROM unnest(m_site, m_room, m_device, m_attribute, m_ts, m_num, m_txt, m_unit)
                           AS t(site, room, device, attribute, ts, num, txt, unit)
                     ORDER BY site, room, device, attribute, ts DESC) AS newest) AS numbered;

    SELECT array_agg(key ORDER BY position) INTO keys
      FROM (SELECT position, dense_rank() OVER (ORDER BY site, room, device, attribute) AS key
              FROM unnest(m_site, m_room, m_device, m_attribute) WITH ORDINALITY
                   AS t(site, room, device, attribute, position)) AS ranked;

    RETURN ingest_keyed_batch(coalesce(k.site, '{}'), coalesce(k.room, '{}'), coalesce(k.device, '{}'),
                              coalesce(k.attribute, '{}'), coalesce(k.unit, '{}'), coalesce(k.ts, '{}'),
                              coalesce(k.num, '{}'), coalesce(k.txt, '{}'),
                              coalesce(keys, '{}'), m_ts, m_num, m_txt,
                              s_site, s_room, s_device, s_status, s_ts,
                              r_topic, r_reason, r_payload, r_size);
END
$$;

-- They make partitions, which only the owner of a table may (010).
SELECT run_as_owner('ingest_batch');
SELECT run_as_owner('ingest_keyed_batch');
SELECT run_as_owner('ingest_keyed_batch_with_receipt');

GRANT EXECUTE ON FUNCTION ingest_keyed_batch, ingest_keyed_batch_with_receipt TO octopus_flows;
