'use strict';
/**
 * PostgreSQL array literals ('{1,NULL,3}', '{"a","b\"c"}') for the ingest's parameter arrays.
 * pg writes the same text for a JS array, but element by element through its generic
 * prepareValue (a type test, two regular expressions and quotes for every element, numbers
 * too): 13 % of Node-RED's busy time in the benchmark (doc/performance.md). These know the
 * element type, so a number is written as it is and a string is scanned once.
 * Plain module: no Node-RED, no pg.
 */

const QUOTE_OR_BACKSLASH = /["\\]/;
const QUOTES_AND_BACKSLASHES = /["\\]/g;

/** Numbers (int, bigint or float8 elements) and nulls → '{1,2.5,NULL}'. */
function numberArray(values) {
    let out = '{';
    for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (i > 0) out += ',';
        if (v === null || v === undefined) {
            out += 'NULL';
        } else if (typeof v === 'number') {
            out += String(v); // NaN and ±Infinity are float8 words too
        } else {
            // anything else could close the literal early: refused, never written
            throw new TypeError(`numberArray: element ${i} is a ${typeof v}, not a number`);
        }
    }
    return `${out}}`;
}

/** Strings and nulls → '{"a","b\\"c",NULL}': every element quoted, so '' and 'NULL' stay text. */
function textArray(values) {
    let out = '{';
    for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (i > 0) out += ',';
        if (v === null || v === undefined) {
            out += 'NULL';
        } else {
            const s = String(v);
            out += QUOTE_OR_BACKSLASH.test(s) ? `"${s.replace(QUOTES_AND_BACKSLASHES, '\\$&')}"` : `"${s}"`;
        }
    }
    return `${out}}`;
}

module.exports = { numberArray, textArray };
