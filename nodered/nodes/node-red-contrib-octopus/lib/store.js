'use strict';
/**
 * Writing a batch to PostgreSQL: one parameterized call of ingest_batch(...) per batch, one
 * round trip, one transaction. Message text only ever travels as parameters.
 */

const { toIngestParams } = require('./batch');

const INGEST_SQL =
    'SELECT ingest_batch($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], ' +
    '$6::float8[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], ' +
    '$13::timestamptz[], $14::text[], $15::text[], $16::bytea[], $17::int[]) AS inserted';

/** Write items with `queryable` (a pg Pool or Client); resolves to the measurements inserted. */
async function writeItems(queryable, items) {
    const result = await queryable.query(INGEST_SQL, toIngestParams(items));
    return result.rows[0].inserted;
}

// SQLSTATE classes that mean "this data can never be written" rather than "try again":
// 22 data exception, 23 integrity constraint, 54 program limit (e.g. an index row too big).
const DATA_ERROR_CLASSES = new Set(['22', '23', '54']);

/** True when a database error is caused by the data itself, so a retry cannot succeed. */
function isDataError(err) {
    return Boolean(err && typeof err.code === 'string' && DATA_ERROR_CLASSES.has(err.code.slice(0, 2)));
}

module.exports = { writeItems, isDataError, INGEST_SQL };
