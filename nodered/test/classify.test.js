'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { classifyMessage } = require('../nodes/node-red-contrib-octopus/lib/classify');
const { createArrivalClock, microsToIso } = require('../nodes/node-red-contrib-octopus/lib/arrival-clock');

const ARRIVAL_US = Date.parse('2026-11-22T12:00:00.123Z') * 1000 + 456;
const LIMIT = 65536;
const classify = (topic, payload) => classifyMessage(topic, Buffer.isBuffer(payload) ? payload : Buffer.from(payload), ARRIVAL_US, LIMIT);

test('a bare reading gets the arrival time, to the microsecond', () => {
    assert.deepEqual(classify('oficina/servidores/servidor1/temperatura', '23.5'), {
        kind: 'reading', site: 'oficina', room: 'servidores', device: 'servidor1', attribute: 'temperatura',
        ts: '2026-11-22T12:00:00.123456Z', value: 23.5, unit: null,
    });
});

test('a JSON reading keeps its own ts and unit', () => {
    const r = classify('a/b/c/d', '{"value": 1.5, "ts": 1795348740000, "unit": "V"}');
    assert.equal(r.ts, '2026-11-22T11:59:00.000Z');
    assert.equal(r.unit, 'V');
});

test('status messages', () => {
    assert.deepEqual(classify('a/b/c/status', 'offline'), {
        kind: 'status', site: 'a', room: 'b', device: 'c', status: 'offline', ts: '2026-11-22T12:00:00.123456Z',
    });
    const bad = classify('a/b/c/status', 'sleeping');
    assert.equal(bad.kind, 'reject');
    assert.equal(bad.reason, 'status must be "online" or "offline", not "sleeping"');
});

test('commands and platform topics are ignored whatever their payload', () => {
    assert.deepEqual(classify('a/b/c/d/set', Buffer.from([0xff])), { kind: 'ignored' });
    assert.deepEqual(classify('octopus/x/y', 'anything'), { kind: 'ignored' });
});

test('a reject keeps topic, reason, the first 4 KiB of the bytes and the full size', () => {
    const r = classify('a//c/d', 'hello');
    assert.deepEqual(r, { kind: 'reject', topic: 'a//c/d', reason: 'topic level 2 is empty', payload: Buffer.from('hello'), size: 5 });
});

test('an oversized payload is rejected before it is decoded, and kept truncated', () => {
    const big = Buffer.alloc(1048576, 0x31);
    const r = classify('a/b/c/d', big);
    assert.equal(r.reason, 'payload of 1048576 bytes exceeds the 65536-byte limit');
    assert.equal(r.size, 1048576);
    assert.equal(r.payload.length, 4096);
    assert.notEqual(r.payload.buffer, big.buffer); // a copy: the 1 MiB can be freed
    assert.equal(classify('a/b/c/d', Buffer.alloc(LIMIT, 0x31)).kind, 'reject'); // 65536 ones is a number out of range
    assert.match(classify('a/b/c/d', Buffer.alloc(LIMIT, 0x31)).reason, /out of range/);
});

test('non-UTF-8 is rejected with its bytes kept', () => {
    const bytes = Buffer.from([0x32, 0x33, 0xfe]);
    const r = classify('a/b/c/d', bytes);
    assert.equal(r.reason, 'payload is not valid UTF-8');
    assert.deepEqual(r.payload, bytes);
});

test('the arrival clock never repeats and never goes back', () => {
    let now = 1000;
    const next = createArrivalClock(() => now);
    assert.equal(next(), 1000000);
    assert.equal(next(), 1000001); // same millisecond
    now = 999; // wall clock stepped back
    assert.equal(next(), 1000002);
    now = 2000;
    assert.equal(next(), 2000000);
    assert.equal(microsToIso(Date.parse('2026-11-22T12:00:00Z') * 1000 + 7), '2026-11-22T12:00:00.000007Z');
});

test('arrival clocks of workers with different slots never give the same microsecond', () => {
    let now = Date.parse('2026-11-22T12:00:00Z');
    const clocks = [0, 1, 9].map((slot) => createArrivalClock(() => now, { slot, slots: 10 }));
    const seen = new Set();
    for (let ms = 0; ms < 50; ms += 1) {
        now += ms % 3 === 0 ? 1 : 0; // several stamps per millisecond, like a burst
        for (const [k, next] of clocks.entries()) {
            for (let i = 0; i < 30; i += 1) {
                const us = next();
                assert.equal(us % 10, [0, 1, 9][k]);
                assert.ok(!seen.has(us));
                seen.add(us);
            }
        }
    }
    const one = createArrivalClock(() => now, { slot: 3, slots: 10 });
    const a = one();
    const b = one();
    assert.ok(b > a && b - a === 10, 'strictly increasing, one slot apart');
});

