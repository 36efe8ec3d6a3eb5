'use strict';
// The redelivery window without a broker: which copies the broker resends after a
// reconnect are recognised as ours (not stored again), in the shapes Mosquitto 2.0.11 was
// seen to resend them (doc/ingest.md), and that nothing else ever is.
const test = require('node:test');
const assert = require('node:assert/strict');
const {
    RedeliveryWindow, messageHash, MATCH_RANGE, NOT_COMMITTED,
} = require('../nodes/node-red-contrib-octopus/lib/redelivery-window');

const h = (i) => messageHash('s/r/d/a', Buffer.from(String(i)));
const pid = (n) => ((n - 1) % 65535) + 1; // packet ids run 1 … 65535, then again

/** As BrokerIngest does once a batch commits: the entry's batch, then done. */
function commit(w, e, batch) {
    e.batch = batch;
    return w.committed(e);
}

/**
 * A window that took messages 0..n-1 (packet ids first..), committed in batches of 10 and
 * then lost its connection; `tickets` counts like the consumer's.
 */
function windowWith(n, { first = 1, committed = n } = {}) {
    const w = new RedeliveryWindow();
    let ticket = 0;
    w.connected(false, ticket);
    const entries = [];
    for (let i = 0; i < n; i += 1) entries.push(w.arrive(pid(first + i), false, h(i), ticket++));
    for (const e of entries) e.taken = true; // handed to the ingest core, as BrokerIngest does
    entries.forEach((e, i) => { if (i < committed) commit(w, e, 1 + Math.floor(i / 10)); });
    // the connection drops; the next one resumes the session
    return { w, entries, next: () => ticket++, reconnect: () => w.connected(true, ticket) };
}

/** Feed copies (message numbers, packet ids from `first`) after a reconnect; what came of each. */
function resend(w, numbers, { first = 1, dup = true, next } = {}) {
    const out = [];
    for (const i of numbers) {
        const packetId = pid(first + i);
        if (w.held !== null) out.push(w.settleHeld(packetId, dup, h(i)));
        const e = w.arrive(packetId, dup, h(i), next());
        if (e !== null) out.push(e);
    }
    if (w.held !== null) out.push(w.settleHeld(null, false, 0));
    return out;
}

const range = (a, b) => Array.from({ length: b - a }, (_, k) => a + k);

test('the hash depends on topic and payload, the same in every process', () => {
    assert.equal(messageHash('a/b', Buffer.from('c')), messageHash('a/b', Buffer.from('c')));
    assert.notEqual(messageHash('a/b', Buffer.from('c')), messageHash('a/bc', Buffer.from('')));
    assert.notEqual(messageHash('a/b', Buffer.from('1')), messageHash('a/b', Buffer.from('2')));
    assert.equal(messageHash('oficina/servidores/servidor1/temperatura', Buffer.from('23.5')), 1403735743164934);
    assert.ok(Number.isSafeInteger(messageHash('x', Buffer.alloc(100000, 7))));
});

test('copies of committed messages are recognised, those of pending ones attached', () => {
    const { w, entries, next, reconnect } = windowWith(100, { committed: 80 });
    reconnect();
    const out = resend(w, range(30, 100), { next });
    assert.equal(out.length, 70);
    out.forEach((e, k) => assert.equal(e, entries[30 + k]));
    assert.ok(out.slice(0, 50).every((e) => e.done), 'committed: acknowledged at once');
    assert.ok(out.slice(50).every((e) => !e.done && e.taken), 'pending: the commit acknowledges the copy');
    assert.equal(w.redelivered, 70);
    // the next message is new; the old entries that did not come back are gone
    const fresh = w.arrive(pid(101), false, h(100), next());
    assert.equal(fresh.taken, false);
    assert.equal(w.size, 71);
});

test('a rotated resend (one block, then the one before it) is recognised', () => {
    const { w, entries, next, reconnect } = windowWith(100);
    reconnect();
    const out = resend(w, [...range(60, 100), ...range(20, 60)], { next });
    assert.deepEqual(out.map((e) => entries.indexOf(e)), [...range(60, 100), ...range(20, 60)]);
    assert.ok(out.every((e) => e.done));
});

test('copies of messages older than the window are stored again; the run after them is recognised', () => {
    const { w, entries, next, reconnect } = windowWith(100, { first: 501 });
    reconnect();
    // messages 480..499 had packet ids 481..500: just before the window's (501..)
    const older = resend(w, range(-20, 0), { first: 501, next });
    assert.ok(older.every((e) => !e.taken), 'new entries: stored');
    const out = resend(w, range(0, 100), { first: 501, next });
    assert.deepEqual(out.map((e) => entries.indexOf(e)), range(0, 100));
});

test('a message newer than all of ours ends matching: nothing after it is taken for a copy', () => {
    const { w, entries, next, reconnect } = windowWith(100);
    reconnect();
    // the broker had everything acknowledged: its resend starts with newer messages (101..)
    const newer = resend(w, range(100, 110), { next });
    assert.ok(newer.every((e) => !e.taken));
    assert.equal(w.aligning, false);
    // a copy of one of ours coming after that is stored again, never dropped
    const late = resend(w, [5, 6], { next });
    assert.ok(late.every((e) => !e.taken && !entries.includes(e)));
});

test('a run ends at the first copy that matches none of ours', () => {
    const { w, entries, next, reconnect } = windowWith(100);
    reconnect();
    const out = resend(w, [...range(50, 100), 100, 101, 10], { next });
    assert.deepEqual(out.slice(0, 50).map((e) => entries.indexOf(e)), range(50, 100));
    assert.ok(out.slice(50).every((e) => !e.taken), 'newer ones, then a late copy: all stored');
});

test('a copy with the packet id but not the content of one of ours is not taken for it', () => {
    const { w, next, reconnect } = windowWith(100);
    reconnect();
    const e = w.arrive(pid(51), true, messageHash('s/r/d/a', Buffer.from('something else')), next());
    assert.notEqual(e, null);
    assert.equal(e.taken, false);
});

test('a run needs two: a lone copy is stored again, never taken on trust', () => {
    const { w, next, reconnect } = windowWith(100);
    reconnect();
    const lone = resend(w, [99], { next });
    assert.equal(lone.length, 1);
    assert.equal(lone[0].taken, false);
    const followedByNew = windowWith(100);
    followedByNew.reconnect();
    const two = resend(followedByNew.w, [99, 100], { next: followedByNew.next });
    assert.ok(two.every((e) => !e.taken));
});

test('without DUP or without a session nothing is matched', () => {
    const a = windowWith(10);
    a.reconnect();
    assert.ok(resend(a.w, [3, 4, 5], { dup: false, next: a.next }).every((e) => !e.taken));
    const b = windowWith(10);
    b.w.connected(false, 100);
    assert.equal(b.w.size, 0);
    assert.ok(resend(b.w, [3, 4, 5], { next: b.next }).every((e) => !e.taken));
});

test('a window whose packet ids leave no wide gap is not matched at all (ambiguous)', () => {
    const w = new RedeliveryWindow();
    w.connected(false, 0);
    let t = 0;
    // 64,000 messages: the gap left among 65,535 packet ids is only 1,535
    const entries = [];
    for (let i = 0; i < 64000; i += 1) entries.push(w.arrive(pid(1 + i), false, h(i), t++));
    entries.forEach((e) => commit(w, e, 1));
    w.connected(true, t);
    assert.equal(w.aligning, false);
    assert.ok(MATCH_RANGE < 64000);
});

test('receipts of an earlier run seed the window; only their copies are recognised', () => {
    const w = new RedeliveryWindow();
    w.load([
        { batchSeq: 7, packetIds: [11, 12, 13], hashes: [h(0), h(1), h(2)] },
        { batchSeq: 8, packetIds: [14, 15], hashes: [h(3), h(4)] },
    ]);
    assert.equal(w.size, 5);
    w.connected(true, 0);
    let t = 0;
    const out = resend(w, [1, 2, 3, 4, 5, 6], { first: 11, next: () => t++ });
    assert.deepEqual(out.map((e) => e.done), [true, true, true, true, false, false]);
    assert.equal(w.redelivered, 4);
});

test('confirmed entries leave; the oldest receipt still needed follows them', () => {
    const { w, entries, next, reconnect } = windowWith(30, { committed: 25 });
    reconnect();
    resend(w, range(0, 30), { next }); // tickets 30..59, in order; all came back: matching over
    assert.equal(w.aligning, false);
    assert.equal(w.oldestNeededBatch(99), 1);
    w.confirm(40); // the broker processed the PUBACKs of tickets 30..39
    assert.equal(w.size, 20);
    assert.equal(w.oldestNeededBatch(99), 2);
    w.confirm(55);
    assert.equal(w.oldestNeededBatch(99), 99, 'nothing committed is unconfirmed: every receipt can go');
    assert.equal(entries[29].batch, NOT_COMMITTED);
});

test('the window keeps at most MATCH_RANGE entries, but never drops a message still being written', () => {
    const w = new RedeliveryWindow();
    w.connected(false, 0);
    const pending = [];
    for (let i = 0; i < MATCH_RANGE + 500; i += 1) {
        const e = w.arrive(pid(1 + i), false, h(i), i);
        if (i < 1000) pending.push(e); else commit(w, e, 1);
    }
    assert.equal(w.size, MATCH_RANGE + 500, 'the oldest are still being written: kept');
    pending.forEach((e) => commit(w, e, 1));
    w.arrive(pid(MATCH_RANGE + 501), false, h(-1), MATCH_RANGE + 500);
    assert.equal(w.size, MATCH_RANGE);
});
