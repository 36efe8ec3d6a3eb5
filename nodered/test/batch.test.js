'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { toIngestParams, toLivePayload } = require('../nodes/node-red-contrib-octopus/lib/batch');

const TS = '2026-11-22T12:00:00.000Z';
const reading = (attribute, value, unit = null) => ({ kind: 'reading', site: 's', room: 'r', device: 'd', attribute, ts: TS, value, unit });
const items = [
    reading('t', 23.5, '°C'),
    reading('door', 'open'),
    reading('alarm', true),
    { kind: 'status', site: 's', room: 'r', device: 'd', status: 'online', ts: TS },
    { kind: 'reject', topic: 'a//c/d', reason: 'topic level 2 is empty', payload: Buffer.from('x'), size: 1 },
];

test('ingest_batch parameters: 17 parallel arrays in the function\'s order', () => {
    const p = toIngestParams(items);
    assert.equal(p.length, 17);
    assert.deepEqual(p.slice(0, 8), [
        ['s', 's', 's'], ['r', 'r', 'r'], ['d', 'd', 'd'], ['t', 'door', 'alarm'], [TS, TS, TS],
        [23.5, null, 1], [null, 'open', 'true'], ['°C', null, null],
    ]);
    assert.deepEqual(p.slice(8, 13), [['s'], ['r'], ['d'], ['online'], [TS]]);
    assert.deepEqual(p.slice(13), [['a//c/d'], ['topic level 2 is empty'], [Buffer.from('x')], [1]]);
});

test('an empty batch gives empty arrays', () => {
    assert.deepEqual(toIngestParams([]), Array.from({ length: 17 }, () => []));
});

test('the live payload follows doc/topics.md', () => {
    assert.deepEqual(toLivePayload(items), {
        readings: [
            { site: 's', room: 'r', device: 'd', attribute: 't', ts: TS, value: 23.5, unit: '°C' },
            { site: 's', room: 'r', device: 'd', attribute: 'door', ts: TS, value: 'open', unit: null },
            { site: 's', room: 'r', device: 'd', attribute: 'alarm', ts: TS, value: true, unit: null },
        ],
        statuses: [{ site: 's', room: 'r', device: 'd', status: 'online', ts: TS }],
        rejects: 1,
    });
});
