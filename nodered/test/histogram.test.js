'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { Histogram } = require('../nodes/node-red-contrib-octopus/lib/histogram');
const { IngestCore } = require('../nodes/node-red-contrib-octopus/lib/ingest-core');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('a histogram counts each observation in its bucket, cumulatively, and the rest in +Inf', () => {
    const h = new Histogram([0.01, 0.1, 1]);
    for (const s of [0.001, 0.01, 0.05, 0.5, 0.7, 3]) h.observe(s);
    assert.deepEqual(h.toJSON(), { le: [0.01, 0.1, 1], counts: [2, 3, 5], sum: 4.261, count: 6 });
});

test('the ingest reports its batch write times and when it reported', async () => {
    const delays = [30, 120];
    const c = new IngestCore({
        write: async (items) => { await sleep(delays.shift() || 0); return items.length; },
        batchSize: 2, lingerMs: 5, writesInFlight: 1, nowMs: () => Date.parse('2026-11-22T12:00:00Z'),
    });
    for (const v of ['1', '2', '3', '4']) c.receive('a/b/c/d', Buffer.from(v));
    await sleep(250);
    const { writeSeconds, at, stored } = c.stats();
    assert.equal(stored, 4);
    assert.equal(at, '2026-11-22T12:00:00.000Z');
    assert.equal(writeSeconds.count, 2);
    const bucket = (s) => writeSeconds.counts[writeSeconds.le.indexOf(s)];
    // one write took 30 ms (≤ 0.05 s), the other 120 ms (≤ 0.25 s, > 0.1 s)
    assert.deepEqual([bucket(0.025), bucket(0.05), bucket(0.1), bucket(0.25)], [0, 1, 1, 2]);
    assert.ok(writeSeconds.sum >= 0.15 && writeSeconds.sum < 0.25, `sum ${writeSeconds.sum}`);
    await c.close();
});
