'use strict';
/**
 * Writing a batch to PostgreSQL: one parameterized call of ingest_keyed_batch(...) per batch,
 * one round trip, one transaction; with a receipt (the batch's MQTT packet ids and message
 * hashes, see redelivery-ledger.js) ingest_keyed_batch_with_receipt(...), which writes both
 * in that transaction (postgres/migrations/012). Message text only ever travels as parameters.
 */

const { toIngestParams } = require('./batch');
const { numberArray, textArray } = require('./pg-array');

// How each of the 21 arrays travels: as its literal, built here (pg-array.js says why), or as
// the array itself for pg to write (the rejects' payloads: bytea, few).
const AS_IS = (values) => values;
const BATCH_ENCODERS = [
    textArray, textArray, textArray, textArray, textArray, textArray, numberArray, textArray, // k_*
    numberArray, textArray, numberArray, textArray,                                          // m_*
    textArray, textArray, textArray, textArray, textArray,                                   // s_*
    textArray, textArray, AS_IS, numberArray,                                                // r_*
];

const BATCH_PARAMS =
    '$1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::float8[], ' +
    '$8::text[], $9::int[], $10::timestamptz[], $11::float8[], $12::text[], $13::text[], ' +
    '$14::text[], $15::text[], $16::text[], $17::timestamptz[], $18::text[], $19::text[], ' +
    '$20::bytea[], $21::int[]';

const INGEST_SQL = `SELECT ingest_keyed_batch(${BATCH_PARAMS}) AS inserted`;

const INGEST_WITH_RECEIPT_SQL =
    `SELECT ingest_keyed_batch_with_receipt(${BATCH_PARAMS}, ` +
    '$22::text, $23::bigint, $24::bigint, $25::int[], $26::bigint[]) AS inserted';

/**
 * Write items with `queryable` (a pg Pool or Client); resolves to the measurements
 * inserted. `receipt` ({worker, batchSeq, keepFrom, packetIds, hashes}) is written in the same
 * transaction, and the worker's receipts before keepFrom are deleted.
 */
async function writeItems(queryable, items, receipt = null) {
    const params = toIngestParams(items).map((values, i) => BATCH_ENCODERS[i](values));
    let sql = INGEST_SQL;
    if (receipt) {
        sql = INGEST_WITH_RECEIPT_SQL;
        params.push(receipt.worker, receipt.batchSeq, receipt.keepFrom,
            numberArray(receipt.packetIds), numberArray(receipt.hashes));
    }
    const result = await queryable.query(sql, params);
    return result.rows[0].inserted;
}

/** A worker's receipts, oldest first: [{batchSeq, packetIds: number[], hashes: number[]}]. */
async function loadReceipts(queryable, worker) {
    const result = await queryable.query(
        'SELECT batch_seq::text AS batch_seq, packet_ids, hashes::text[] AS hashes ' +
        'FROM ingest_receipts WHERE worker = $1 ORDER BY batch_seq',
        [worker]);
    return result.rows.map((r) => ({
        batchSeq: Number(r.batch_seq), packetIds: r.packet_ids, hashes: r.hashes.map(Number),
    }));
}

/** The worker's arrival-clock slot (0-9), claimed once and kept (postgres/migrations/003). */
async function claimClockSlot(queryable, worker) {
    const result = await queryable.query('SELECT ingest_claim_clock_slot($1) AS slot', [worker]);
    const slot = result.rows[0] && result.rows[0].slot;
    if (!Number.isInteger(slot) || slot < 0 || slot > 9) throw new Error(`ingest_claim_clock_slot gave ${slot}, not a slot 0-9`);
    return slot;
}

/** A worker that leaves for good gives its slot back. */
async function releaseClockSlot(queryable, worker) {
    await queryable.query('DELETE FROM ingest_workers WHERE worker = $1', [worker]);
}

// SQLSTATE classes that mean "this data can never be written" rather than "try again":
// 22 data exception, 23 integrity constraint, 54 program limit (e.g. an index row too big).
const DATA_ERROR_CLASSES = new Set(['22', '23', '54']);

/** True when a database error is caused by the data itself, so a retry cannot succeed. */
function isDataError(err) {
    return Boolean(err && typeof err.code === 'string' && DATA_ERROR_CLASSES.has(err.code.slice(0, 2)));
}

module.exports = {
    writeItems, loadReceipts, claimClockSlot, releaseClockSlot, isDataError, INGEST_SQL, INGEST_WITH_RECEIPT_SQL,
};
