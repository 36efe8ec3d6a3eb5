-- 003: one arrival-clock slot per ingest worker, so that two workers never stamp two
-- readings of one attribute with the same time.
--
-- A reading without its own ts is stamped with its arrival time, in microseconds, strictly
-- increasing within a worker. A measurement is keyed on (attribute, ts), so two workers
-- sharing the load could stamp two different readings of one attribute with the same
-- microsecond, and the second would be taken for a redelivery and not stored (measured: a
-- few in 6,000 with two workers). Each worker therefore stamps only microseconds whose last
-- digit is its slot (0-9): the stamps of two workers can never be equal.
CREATE TABLE ingest_workers (
    worker     text PRIMARY KEY,            -- the ingest's MQTT client id
    clock_slot smallint NOT NULL UNIQUE CHECK (clock_slot BETWEEN 0 AND 9),
    claimed_at timestamptz NOT NULL DEFAULT now()
);

-- The worker's slot: the one it has, or the lowest free one. Safe when workers start at once.
CREATE FUNCTION ingest_claim_clock_slot(p_worker text) RETURNS smallint
LANGUAGE plpgsql AS $$
DECLARE
    slot smallint;
BEGIN
    LOOP
        SELECT clock_slot INTO slot FROM ingest_workers WHERE worker = p_worker;
        IF FOUND THEN
            RETURN slot;
        END IF;
        SELECT s INTO slot FROM generate_series(0, 9) AS s
         WHERE s NOT IN (SELECT clock_slot FROM ingest_workers)
         ORDER BY s LIMIT 1;
        IF slot IS NULL THEN
            RAISE EXCEPTION 'all 10 ingest clock slots are taken'
                USING HINT = 'delete the rows of retired workers from ingest_workers';
        END IF;
        BEGIN
            INSERT INTO ingest_workers (worker, clock_slot) VALUES (p_worker, slot);
            RETURN slot;
        EXCEPTION WHEN unique_violation THEN
            -- another worker took it at the same moment: look again
        END;
    END LOOP;
END
$$;
