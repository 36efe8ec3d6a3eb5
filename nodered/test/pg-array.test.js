'use strict';
// The ingest's array literals (lib/pg-array.js). That PostgreSQL reads them back as the same
// values is tested against a real server in store.test.js ("text that array syntax …").
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { numberArray, textArray } = require('../nodes/node-red-contrib-octopus/lib/pg-array');

describe('pg-array', () => {
    it('writes numbers as they are and null as NULL', () => {
        assert.equal(numberArray([1, -2.5, null, 1e21, 2 ** 52 + 7, undefined]), '{1,-2.5,NULL,1e+21,4503599627370503,NULL}');
        assert.equal(numberArray([NaN, Infinity, -Infinity]), '{NaN,Infinity,-Infinity}');
        assert.equal(numberArray([]), '{}');
    });

    it('refuses a non-number in a number array rather than write it into the literal', () => {
        assert.throws(() => numberArray([1, '2},{3']), /element 1 is a string, not a number/);
        assert.throws(() => numberArray([true]), /element 0 is a boolean/);
    });

    it('quotes every string, so that empty and NULL stay text, and escapes quotes and backslashes', () => {
        assert.equal(textArray(['a', '', 'NULL', null]), '{"a","","NULL",NULL}');
        assert.equal(textArray(['say "hi"', 'C:\\dir', '{x,y}', 'sp ace', '°C']),
            '{"say \\"hi\\"","C:\\\\dir","{x,y}","sp ace","°C"}');
        assert.equal(textArray([]), '{}');
    });
});
