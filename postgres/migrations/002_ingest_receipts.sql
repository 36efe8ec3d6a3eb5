-- 002: receipts of the ingest's committed batches, so that a restarted ingest worker
-- recognises the broker's redeliveries of messages it had stored but whose acknowledgement
-- the broker had not yet processed.
--
-- The ingest acknowledges an MQTT message (PUBACK) only after the batch holding it is
-- committed. If it dies before the broker has processed that PUBACK, the broker sends the
-- message again (DUP set, same packet id). A reading without its own ts would then get a new
-- arrival time and be stored twice; a status or a reject too. So each batch writes, in its
-- own transaction, which MQTT messages it held: (packet id, hash of topic and payload), in
-- order. A worker reads its receipts when it starts and acknowledges a matching redelivery
-- without storing it again (doc/ingest.md). Receipts go as soon as the broker has confirmed
-- every message in them: a handful of rows per worker normally, more while the broker lags.
CREATE TABLE ingest_receipts (
    worker       text NOT NULL,      -- the ingest's MQTT client id (one session per worker)
    batch_seq    bigint NOT NULL,    -- the worker's batch number, increasing
    committed_at timestamptz NOT NULL DEFAULT now(),
    packet_ids   integer[] NOT NULL, -- MQTT packet ids of the batch's QoS 1 messages, in order
    hashes       bigint[] NOT NULL,  -- hash of topic and payload of each, same order
    PRIMARY KEY (worker, batch_seq)
);
-- Random hashes do not compress: do not try, on every batch.
ALTER TABLE ingest_receipts ALTER COLUMN packet_ids SET STORAGE EXTERNAL,
                            ALTER COLUMN hashes SET STORAGE EXTERNAL;

-- ingest_batch (001) and the batch's receipt in one statement, hence one transaction: the
-- receipt exists if and only if the batch is committed. Receipts of this worker older than
-- p_keep_from hold only messages the broker has confirmed: they go in the same transaction.
CREATE FUNCTION ingest_batch_with_receipt(
    m_site text[], m_room text[], m_device text[], m_attribute text[],
    m_ts timestamptz[], m_num double precision[], m_txt text[], m_unit text[],
    s_site text[], s_room text[], s_device text[], s_status text[], s_ts timestamptz[],
    r_topic text[], r_reason text[], r_payload bytea[], r_size integer[],
    p_worker text, p_batch_seq bigint, p_keep_from bigint,
    p_packet_ids integer[], p_hashes bigint[]
) RETURNS integer  -- measurements actually inserted, as ingest_batch
LANGUAGE plpgsql AS $$
DECLARE
    inserted integer;
BEGIN
    inserted := ingest_batch(m_site, m_room, m_device, m_attribute, m_ts, m_num, m_txt, m_unit,
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
