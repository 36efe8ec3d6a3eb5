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

test('ingest_keyed_batch parameters: 21 parallel arrays in the function\'s order', () => {
    const p = toIngestParams(items);
    assert.equal(p.length, 21);
    assert.deepEqual(p.slice(0, 8), [
        ['s', 's', 's'], ['r', 'r', 'r'], ['d', 'd', 'd'], ['t', 'door', 'alarm'], ['°C', null, null],
        [TS, TS, TS], [23.5, null, 1], [null, 'open', 'true'],
    ]);
    assert.deepEqual(p.slice(8, 12), [[1, 2, 3], [TS, TS, TS], [23.5, null, 1], [null, 'open', 'true']]);
    assert.deepEqual(p.slice(12, 17), [['s'], ['r'], ['d'], ['online'], [TS]]);
    assert.deepEqual(p.slice(17), [['a//c/d'], ['topic level 2 is empty'], [Buffer.from('x')], [1]]);
});

test('each attribute is named once, readings point at it, its newest reading is its last value', () => {
    const at = (attribute, ts, value, device = 'd') => ({ kind: 'reading', site: 's', room: 'r', device, attribute, ts, value, unit: null });
    const p = toIngestParams([
        at('t', '2026-11-22T12:00:00.500100Z', 2), // arrival time, 6 decimals
        at('t', '2026-11-22T12:00:00.500Z', 1), // a device's ts, 3 decimals: older by 100 µs
        at('t', '2026-11-22T12:00:00.500100Z', 3, 'other'), // same attribute name, another device
        at('h', '2026-11-22T11:59:59.000Z', 40),
        at('t', '2026-11-22T12:00:00.600Z', 4, 'other'), // newer
        at('t', '2026-11-22T12:00:00.600Z', 5, 'other'), // as new: the later one wins
    ]);
    const [, , kDevice, kAttribute, , kTs, kNum, , mKey, , mNum] = p;
    assert.deepEqual(kDevice, ['d', 'other', 'd']);
    assert.deepEqual(kAttribute, ['t', 't', 'h']);
    assert.deepEqual(kTs, ['2026-11-22T12:00:00.500100Z', '2026-11-22T12:00:00.600Z', '2026-11-22T11:59:59.000Z']);
    assert.deepEqual(kNum, [2, 5, 40]);
    assert.deepEqual(mKey, [1, 1, 2, 3, 2, 2]);
    assert.deepEqual(mNum, [2, 1, 3, 40, 4, 5]);
});

test('an empty batch gives empty arrays', () => {
    assert.deepEqual(toIngestParams([]), Array.from({ length: 21 }, () => []));
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
