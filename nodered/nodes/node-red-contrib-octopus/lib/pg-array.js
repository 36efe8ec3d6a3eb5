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

/** values → '{e1,e2,NULL}', each non-null value written by `element(value, index)`. */
function arrayLiteral(values, element) {
    let out = '{';
    for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (i > 0) out += ',';
        out += v === null || v === undefined ? 'NULL' : element(v, i);
    }
    return `${out}}`;
}

function numberElement(v, i) {
    // anything else could close the literal early: refused, never written
    if (typeof v !== 'number') throw new TypeError(`numberArray: element ${i} is a ${typeof v}, not a number`);
    return String(v); // NaN and ±Infinity are float8 words too
}

function textElement(v) {
    const s = String(v);
    return QUOTE_OR_BACKSLASH.test(s) ? `"${s.replace(QUOTES_AND_BACKSLASHES, '\\$&')}"` : `"${s}"`;
}

/** Numbers (int, bigint or float8 elements) and nulls → '{1,2.5,NULL}'. */
const numberArray = (values) => arrayLiteral(values, numberElement);

/** Strings and nulls → '{"a","b\\"c",NULL}': every element quoted, so '' and 'NULL' stay text. */
const textArray = (values) => arrayLiteral(values, textElement);

module.exports = { numberArray, textArray };
