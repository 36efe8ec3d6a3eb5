'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { IngestCore } = require('../nodes/node-red-contrib-octopus/lib/ingest-core');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const buf = (s) => Buffer.from(s);

/** A fake database: records batches, fails when told to. */
function fakeDb() {
    const db = { batches: [], failures: [], delayMs: 0 };
    db.write = async (items) => {
        if (db.delayMs) await sleep(db.delayMs);
        const failure = db.failures.shift();
        if (failure) throw failure;
        db.batches.push(items);
        return items.filter((i) => i.kind === 'reading').length;
    };
    return db;
}

function core(db, opts = {}) {
    const committed = [];
    const events = [];
    const c = new IngestCore({
        write: db.write,
        batchSize: 3,
        lingerMs: 20,
        retryInitialMs: 10,
        retryMaxMs: 40,
        onCommitted: (items, inserted) => committed.push({ items, inserted }),
        onEvent: (e) => events.push(e),
        ...opts,
    });
    return { c, committed, events };
}

/** Wrap db.write to record the most writes ever in flight at once: `.max`. */
function countWritesInFlight(db) {
    const counter = { now: 0, max: 0 };
    const write = db.write;
    db.write = async (items) => {
        counter.now += 1;
        counter.max = Math.max(counter.max, counter.now);
        try { return await write(items); } finally { counter.now -= 1; }
    };
    return counter;
}

test('a full batch is written at once', async () => {
    const db = fakeDb();
    const { c, committed } = core(db, { lingerMs: 10000 });
    for (let i = 0; i < 3; i++) c.receive('a/b/c/d', buf(String(i)));
    await sleep(5);
    assert.equal(db.batches.length, 1);
    assert.deepEqual(db.batches[0].map((i) => i.value), [0, 1, 2]);
    assert.equal(committed[0].inserted, 3);
    await c.close();
});

test('a partial batch is written after the linger time', async () => {
    const db = fakeDb();
    const { c } = core(db, { lingerMs: 30 });
    c.receive('a/b/c/d', buf('1'));
    await sleep(10);
    assert.equal(db.batches.length, 0);
    await sleep(40);
    assert.equal(db.batches.length, 1);
    await c.close();
});

test('done is called only after the commit', async () => {
    const db = fakeDb();
    db.delayMs = 30;
    const { c } = core(db, { lingerMs: 0 });
    let doneAt = null;
    c.receive('a/b/c/d', buf('1'), (err) => { doneAt = err || 'ok'; });
    await sleep(10);
    assert.equal(doneAt, null);
    await sleep(40);
    assert.equal(doneAt, 'ok');
    await c.close();
});

test('ignored messages are not written and are done at once', async () => {
    const db = fakeDb();
    const { c } = core(db, { lingerMs: 0 });
    let done = false;
    c.receive('a/b/c/d/set', buf('1'), () => { done = true; });
    c.receive('octopus/live', buf('{}'));
    assert.equal(done, true);
    await sleep(20);
    assert.equal(db.batches.length, 0);
    assert.equal(c.stats().ignored, 2);
    assert.equal(c.stats().received, 2);
    await c.close();
});

test('rejects travel in the batch and are counted once committed', async () => {
    const db = fakeDb();
    const { c, committed } = core(db, { lingerMs: 0 });
    c.receive('a/b/c', buf('1'));
    c.receive('a/b/c/d', buf('zz!'));
    c.receive('a/b/c/d', buf('5'));
    await sleep(20);
    assert.deepEqual(db.batches[0].map((i) => i.kind), ['reject', 'reject', 'reading']);
    const s = c.stats();
    assert.equal(s.rejected, 2);
    assert.equal(s.stored, 1);
    assert.equal(s.batches, 1);
    assert.equal(committed[0].items.length, 3);
    await c.close();
});

test('with one write in flight, batches are written one at a time, in order; a busy writer makes bigger batches', async () => {
    const db = fakeDb();
    db.delayMs = 30;
    const writes = countWritesInFlight(db);
    const { c } = core(db, { batchSize: 4, lingerMs: 5, writesInFlight: 1 });
    c.receive('a/b/c/d', buf('0'));
    await sleep(10); // first batch (one message) is being written
    for (let i = 1; i < 10; i++) c.receive('a/b/c/d', buf(String(i)));
    await sleep(150);
    assert.equal(writes.max, 1);
    assert.deepEqual(db.batches.map((b) => b.map((i) => i.value)), [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]);
    await c.close();
});

test('a failed write is retried with backoff and nothing is lost', async () => {
    const db = fakeDb();
    db.failures.push(new Error('connection refused'), new Error('connection refused'));
    const { c, events } = core(db, { lingerMs: 0 });
    c.receive('a/b/c/d', buf('1'));
    await sleep(5);
    c.receive('a/b/c/d', buf('2'));
    await sleep(100);
    // (with two writes in flight, the retried batch may commit after the next one)
    assert.deepEqual(db.batches.flat().map((i) => i.value).sort(), [1, 2]);
    const failed = events.filter((e) => e.type === 'write-failed');
    assert.equal(failed.length, 2);
    assert.deepEqual(failed.map((e) => e.retryInMs), [10, 20]);
    assert.equal(c.stats().errors, 2);
    assert.equal(c.stats().buffered, 0);
    await c.close();
});

test('the buffer is bounded: beyond it messages are dropped, counted and reported once', async () => {
    const db = fakeDb();
    for (let i = 0; i < 100; i++) db.failures.push(new Error('down'));
    const { c, events } = core(db, { maxBuffered: 5, lingerMs: 0, retryInitialMs: 1000 });
    const dropped = [];
    for (let i = 0; i < 8; i++) c.receive('a/b/c/d', buf(String(i)), (err) => err && dropped.push(err.message));
    assert.equal(c.stats().buffered, 5);
    assert.equal(c.stats().dropped, 3);
    assert.equal(dropped.length, 3);
    assert.match(dropped[0], /buffer full/);
    assert.equal(events.filter((e) => e.type === 'buffer-full').length, 1);
    await sleep(5); // the first write has failed; the retry waits 1 s
    assert.equal(events.filter((e) => e.type === 'write-failed').length, 1);
    db.failures.length = 0;
    c.retryNow();
    await sleep(20);
    assert.deepEqual(db.batches.flat().map((i) => i.value), [0, 1, 2, 3, 4]);
    assert.equal(events.filter((e) => e.type === 'buffer-ok').length, 1);
    await c.close();
});

test('a batch the database refuses for its data is written one by one; the culprit becomes a reject', async () => {
    const db = fakeDb();
    const dataError = Object.assign(new Error('index row size exceeds maximum'), { code: '54000' });
    const write = db.write;
    db.write = async (items) => {
        if (items.some((i) => i.kind === 'reading' && i.value === 666)) throw dataError;
        return write(items);
    };
    const { c, events } = core(db, { lingerMs: 0, batchSize: 10 });
    for (const v of ['1', '666', '3']) c.receive('a/b/c/d', buf(v));
    await sleep(50);
    const written = db.batches.flat();
    assert.deepEqual(written.map((i) => i.kind), ['reading', 'reject', 'reading']);
    assert.equal(written[1].reason, 'database refused it: index row size exceeds maximum');
    assert.equal(written[1].topic, 'a/b/c/d');
    assert.equal(events.filter((e) => e.type === 'data-error').length, 1);
    assert.equal(c.stats().buffered, 0);
    await c.close();
});

test('close writes what is buffered, then stops', async () => {
    const db = fakeDb();
    const { c } = core(db, { lingerMs: 10000 });
    c.receive('a/b/c/d', buf('1'));
    const unwritten = await c.close(1000);
    assert.equal(unwritten, 0);
    assert.equal(db.batches.length, 1);
    let error = null;
    c.receive('a/b/c/d', buf('2'), (err) => { error = err; });
    assert.match(error.message, /stopping/);
});

test('close gives up after one attempt when the database is down', async () => {
    const db = fakeDb();
    for (let i = 0; i < 10; i++) db.failures.push(new Error('down'));
    const { c } = core(db, { lingerMs: 0, retryInitialMs: 5000 });
    c.receive('a/b/c/d', buf('1'));
    await sleep(10);
    const started = Date.now();
    const unwritten = await c.close(3000);
    assert.equal(unwritten, 1);
    assert.ok(Date.now() - started < 1000);
});

test('each message\'s meta travels with it: to write beside its item, back to done', async () => {
    const db = fakeDb();
    const metas = [];
    const write = db.write;
    db.write = async (items, m) => { metas.push(m); return write(items); };
    const { c } = core(db, { lingerMs: 0 });
    const done = [];
    c.receive('a/b/c/d', buf('1'), (err, meta) => done.push([err, meta]), { id: 'm1' });
    c.receive('a/b/c', buf('1'), (err, meta) => done.push([err, meta]), { id: 'm2' }); // a reject
    await sleep(20);
    assert.deepEqual(metas, [[{ id: 'm1' }, { id: 'm2' }]]);
    assert.deepEqual(done, [[undefined, { id: 'm1' }], [undefined, { id: 'm2' }]]);
    await c.close();
});

test('with batchIgnored, commands travel in the batch (storing nothing) and are done in order', async () => {
    const db = fakeDb();
    const { c } = core(db, { lingerMs: 0, batchIgnored: true });
    const done = [];
    c.receive('a/b/c/d', buf('1'), () => done.push('reading'));
    c.receive('a/b/c/d/set', buf('0'), () => done.push('command'));
    assert.deepEqual(done, [], 'not done before the batch commits');
    await sleep(20);
    assert.deepEqual(done, ['reading', 'command']);
    assert.deepEqual(db.batches[0].map((i) => i.kind), ['reading', 'ignored']);
    assert.equal(c.stats().ignored, 1);
    assert.equal(c.stats().stored, 1);
    await c.close();
});

test('a message not taken (buffer full, stopping) gets a retryable error: it may come again', async () => {
    const db = fakeDb();
    const { c } = core(db, { lingerMs: 10000, maxBuffered: 1 });
    const errors = [];
    c.receive('a/b/c/d', buf('1'));
    c.receive('a/b/c/d', buf('2'), (err, meta) => errors.push([err.retryable, meta]), 'full');
    await c.close(1000);
    c.receive('a/b/c/d', buf('3'), (err, meta) => errors.push([err.retryable, meta]), 'stopping');
    assert.deepEqual(errors, [[true, 'full'], [true, 'stopping']]);
});

test('two writes in flight by default: the next batch is sent while one is being committed', async () => {
    const db = fakeDb();
    db.delayMs = 30;
    const writes = countWritesInFlight(db);
    const { c } = core(db, { batchSize: 2, lingerMs: 5 });
    const done = [];
    for (let i = 0; i < 6; i++) c.receive('a/b/c/d', buf(String(i)), () => done.push(i));
    await sleep(150);
    assert.equal(writes.max, 2);
    assert.deepEqual(db.batches.flat().map((i) => i.value).sort(), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(done.sort(), [0, 1, 2, 3, 4, 5]);
    await c.close();
});

test('when both writes in flight fail, one retry takes both batches, and nothing is lost', async () => {
    const db = fakeDb();
    db.delayMs = 5;
    db.failures.push(new Error('down'), new Error('down'));
    const { c, events } = core(db, { batchSize: 1, lingerMs: 0 });
    c.receive('a/b/c/d', buf('1'));
    c.receive('a/b/c/d', buf('2'));
    await sleep(100);
    assert.deepEqual(db.batches.flat().map((i) => i.value).sort(), [1, 2]);
    assert.equal(events.filter((e) => e.type === 'write-failed').length, 1, 'one warning for the episode');
    assert.equal(c.stats().errors, 2);
    await c.close();
});

// --- the live feed (octopus/live) ---------------------------------------------------------

function liveCore(db, opts = {}) {
    const slices = [];
    const made = core(db, { onLive: (items) => slices.push({ items, batches: db.batches.length }), ...opts });
    return { ...made, slices };
}

test('the live feed gets what was taken ahead of the commit, in slices of liveMs', async () => {
    const db = fakeDb();
    db.delayMs = 200; // a slow disk: the live feed must not wait for it
    const { c, slices } = liveCore(db, { liveMs: 15, lingerMs: 0, batchSize: 100 });
    c.receive('a/b/c/d', buf('1'));
    c.receive('a/b/c/status', buf('online'));
    c.receive('a/b/c', buf('2')); // a reject (too few levels): counted live too
    await sleep(5);
    assert.equal(slices.length, 0, 'a slice waits its liveMs');
    await sleep(30);
    assert.equal(slices.length, 1);
    assert.equal(slices[0].batches, 0, 'published before any commit');
    assert.deepEqual(slices[0].items.map((i) => i.kind), ['reading', 'status', 'reject']);
    c.receive('a/b/c/d', buf('3'));
    await sleep(30);
    assert.deepEqual(slices.map((s) => s.items.length), [3, 1], 'the next slice holds only what came after');
    await c.close();
    assert.equal(db.batches.flat().length, 4, 'and every message is still stored');
});

test('the live feed leaves out what was not taken, and ignored topics', async () => {
    const db = fakeDb();
    db.delayMs = 1000;
    const { c, slices } = liveCore(db, { liveMs: 5, batchSize: 1, maxBuffered: 2, writesInFlight: 1 });
    c.receive('octopus/live', buf('{}'));
    for (let i = 0; i < 4; i++) c.receive('a/b/c/d', buf(String(i)));
    await sleep(20);
    assert.deepEqual(slices.flatMap((s) => s.items.map((i) => i.value)), [0, 1],
        'messages dropped by a full buffer come again later: shown then, not now');
    c.close(10);
});

test('with liveMs 0 the live feed gets each batch after its commit', async () => {
    const db = fakeDb();
    db.delayMs = 30;
    const { c, slices } = liveCore(db, { liveMs: 0, lingerMs: 0, batchSize: 2 });
    c.receive('a/b/c/d', buf('1'));
    c.receive('a/b/c/d', buf('2'));
    await sleep(10);
    assert.equal(slices.length, 0, 'not before the commit');
    await sleep(40);
    assert.equal(slices.length, 1);
    assert.equal(slices[0].batches, 1);
    assert.deepEqual(slices[0].items.map((i) => i.value), [1, 2]);
    await c.close();
});

test('close publishes the slice not yet due', async () => {
    const db = fakeDb();
    const { c, slices } = liveCore(db, { liveMs: 10000 });
    c.receive('a/b/c/d', buf('1'));
    await c.close();
    assert.deepEqual(slices.map((s) => s.items.length), [1]);
});

test('a live feed that throws is reported, and the messages are stored all the same', async () => {
    const db = fakeDb();
    const { c, events } = core(db, { liveMs: 1, onLive: () => { throw new Error('no broker'); } });
    let done = null;
    c.receive('a/b/c/d', buf('1'), (err) => { done = err || 'ok'; });
    await sleep(40);
    assert.deepEqual(events.map((e) => [e.type, e.error.message]), [['live-failed', 'no broker']]);
    assert.equal(done, 'ok');
    await c.close();
});
