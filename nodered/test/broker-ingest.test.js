'use strict';
// The ingest fed by the broker (consumer + redelivery window + core) against a real
// Mosquitto started here (skipped with a message without one), with a database stand-in
// that keeps rows and receipts as ingest_keyed_batch_with_receipt does; and the crash test once
// more against the real PostgreSQL schema when OCTOPUS_TEST_PG is set (as store.test.js).
// Payloads are bare sequence numbers: stamped with their arrival time, the hard case for
// exactly-once.
const { describe, it, before, after, afterEach, test } = require('node:test');
const assert = require('node:assert/strict');
const { BrokerIngest } = require('../nodes/node-red-contrib-octopus/lib/broker-ingest');
const { writeItems, loadReceipts } = require('../nodes/node-red-contrib-octopus/lib/store');
const { mosquittoBinary, startMosquitto, testClient } = require('./helpers/mosquitto');
const { migratedSchema, dropSchema } = require('./helpers/database');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(probe, what, timeoutMs = 10000) {
    const deadline = Date.now() + timeoutMs;
    while (!probe()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        // eslint-disable-next-line no-await-in-loop
        await sleep(10);
    }
}

/**
 * Rows (sequence number → times stored), receipts and clock slots, as PostgreSQL would keep
 * them: a reading whose (attribute, ts) is taken already is not inserted (the primary key).
 */
function fakeDb() {
    const db = { rows: new Map(), keys: new Set(), receipts: new Map(), slots: new Map(), down: false, gate: null, writes: 0 };
    db.write = async (items, receipt) => {
        if (db.gate) await db.gate;
        await sleep(1);
        if (db.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        db.writes += 1;
        let inserted = 0;
        for (const it of items) {
            if (it.kind !== 'reading') continue;
            const key = `${it.site}/${it.room}/${it.device}/${it.attribute}@${it.ts}`;
            if (db.keys.has(key)) continue; // ON CONFLICT DO NOTHING
            db.keys.add(key);
            db.rows.set(it.value, (db.rows.get(it.value) || 0) + 1);
            inserted += 1;
        }
        for (const seq of [...db.receipts.keys()]) if (seq < receipt.keepFrom) db.receipts.delete(seq);
        if (receipt.packetIds.length > 0) db.receipts.set(receipt.batchSeq, { ...receipt });
        return inserted;
    };
    db.loadReceipts = async () => [...db.receipts.values()].sort((a, b) => a.batchSeq - b.batchSeq);
    db.claimClockSlot = async (worker) => {
        if (!db.slots.has(worker)) db.slots.set(worker, db.slots.size);
        return db.slots.get(worker);
    };
    db.duplicates = () => [...db.rows.values()].reduce((n, c) => n + c - 1, 0);
    return db;
}

const running = new Set();
let workers = 0;
// Each test has workers and a shared-subscription group of its own: a stopped worker's
// session lives on, and Mosquitto keeps routing its share of the group to it.
function ingest(broker, db, { clientId = `worker-${(workers += 1)}-ingest`, group = 'g', receiveMaximum = 1000, batchSize = 50 } = {}) {
    const bi = new BrokerIngest({
        mqtt: {
            host: '127.0.0.1', port: broker.port, clientId, topics: [`$share/${group}/#`],
            receiveMaximum, reconnectInitialMs: 50, sessionExpiryS: 300,
        },
        core: { batchSize, lingerMs: 5, maxBuffered: 2 * receiveMaximum, retryInitialMs: 20, retryMaxMs: 100 },
        write: db.write,
        loadReceipts: db.loadReceipts,
        claimClockSlot: db.claimClockSlot && (() => db.claimClockSlot(clientId)),
    });
    bi.start();
    running.add(bi);
    return bi;
}

/** What a SIGKILL leaves: no DISCONNECT, nothing more written, PUBACKs in flight gone. */
function kill(bi, db) {
    running.delete(bi);
    bi.stopping = true;
    bi.consumer.stopping = true;
    clearTimeout(bi.consumer.reconnectTimer);
    const write = db.write;
    bi.opts.write = () => new Promise(() => {}); // the process is gone: no more commits
    if (bi.consumer.socket) bi.consumer.socket.destroy();
    bi.core.closing = true;
    clearTimeout(bi.core.lingerTimer);
    clearTimeout(bi.core.retryTimer);
    return write;
}

/**
 * From now on, this ingest's PUBACKs (and the PINGREQs that would confirm them) never reach
 * the broker: as when Mosquitto, seconds behind in reading them, loses them with the
 * connection.
 */
function losePubacks(bi) {
    const send = bi.consumer.send.bind(bi.consumer);
    bi.consumer.send = (buffer) => { if (buffer[0] !== 0x40 && buffer[0] !== 0xc0) send(buffer); };
}

async function publish(port, from, to, { site = 's', qos = 1 } = {}) {
    const clients = await Promise.all([0, 1, 2, 3].map(() => testClient(port)));
    const sent = [];
    for (let i = from; i < to; i += 1) sent.push(clients[i % 4].publish(`${site}/load/dev${i % 4}/seq`, String(i), qos));
    await Promise.all(sent);
    for (const c of clients) c.close();
}

if (!mosquittoBinary()) {
    test('the broker ingest against a real Mosquitto', {
        skip: 'no mosquitto binary (set OCTOPUS_TEST_MOSQUITTO, or install mosquitto): the broker ingest is not tested',
    }, () => {});
} else describe('the broker ingest against a real Mosquitto', () => {
    let broker;
    let group = 0;
    before(async () => { broker = await startMosquitto(['max_queued_messages 100000']); });
    afterEach(async () => {
        await Promise.all([...running].map((bi) => bi.stop(2000)));
        running.clear();
    });
    after(async () => { if (broker) await broker.stop(); });
    const nextGroup = () => `g${(group += 1)}`;

    it('stores each message once and acknowledges it only after the commit', async () => {
        const db = fakeDb();
        let open;
        db.gate = new Promise((resolve) => { open = resolve; });
        const bi = ingest(broker, db, { group: nextGroup() });
        await waitFor(() => bi.consumer.connected, 'the connection');
        await sleep(50);
        const published = publish(broker.port, 0, 200);
        await waitFor(() => bi.consumer.counters.messages === 200, '200 messages');
        assert.equal(bi.consumer.counters.acked, 0, 'no PUBACK before the commit');
        // the connection drops while the batches are being written: the broker sends all
        // 200 again, and they are the same messages, not new ones
        bi.consumer.reconnect('test');
        await waitFor(() => bi.consumer.counters.messages === 400, 'the 200 again');
        open();
        db.gate = null;
        await published;
        await waitFor(() => bi.consumer.counters.acked === 200, 'all acknowledged');
        assert.equal(db.rows.size, 200);
        assert.equal(db.duplicates(), 0);
        assert.equal(bi.stats().redelivered, 200);
        assert.equal(bi.stats().inflight, 0);
    });

    it('after a crash, copies of committed messages whose PUBACK the broker never got are not stored again', async () => {
        const db = fakeDb();
        const g = nextGroup();
        const a = ingest(broker, db, { group: g, clientId: 'crash-1-ingest' });
        await waitFor(() => a.consumer.connected, 'the connection');
        await sleep(50);
        losePubacks(a); // committed, acknowledged, but the broker processes none of it
        await publish(broker.port, 0, 300);
        await waitFor(() => db.rows.size === 300, '300 rows');
        assert.ok(db.receipts.size > 0, 'receipts written with the batches');
        kill(a, db);
        await sleep(100);
        await publish(broker.port, 300, 400); // while it is down
        const b = ingest(broker, db, { group: g, clientId: 'crash-1-ingest' });
        await waitFor(() => db.rows.size === 400, 'all 400');
        await waitFor(() => b.stats().inflight === 0, 'everything acknowledged');
        assert.equal(db.duplicates(), 0);
        assert.equal(b.stats().redelivered, 300);
        // once the broker has confirmed them, receipts go with the next batch's transaction
        await waitFor(() => b.consumer.unconfirmed === 0, 'the broker\'s confirmation');
        await publish(broker.port, 400, 401);
        await waitFor(() => db.receipts.size <= 1, 'receipts pruned');
    });

    it('when the database is down, holds at most receiveMaximum and catches up by itself', async () => {
        const db = fakeDb();
        db.down = true;
        const bi = ingest(broker, db, { group: nextGroup(), receiveMaximum: 50, batchSize: 20 });
        await waitFor(() => bi.consumer.connected, 'the connection');
        await sleep(50);
        const published = publish(broker.port, 0, 500);
        await waitFor(() => bi.consumer.inflight === 50, '50 held');
        await sleep(300);
        assert.equal(bi.consumer.inflight, 50);
        assert.equal(bi.core.buffered, 50);
        assert.equal(bi.core.stats().dropped, 0);
        db.down = false;
        await published;
        await waitFor(() => db.rows.size === 500, 'all 500 stored');
        assert.equal(db.duplicates(), 0);
        assert.ok(bi.core.stats().errors > 0);
    });

    it('QoS 0 messages are stored too (at most once)', async () => {
        const db = fakeDb();
        const bi = ingest(broker, db, { group: nextGroup() });
        await waitFor(() => bi.consumer.connected, 'the connection');
        await sleep(50);
        await publish(broker.port, 0, 50, { qos: 0 });
        await waitFor(() => db.rows.size === 50, '50 rows');
        assert.equal(bi.stats().inflight, 0);
    });

    it('two workers on one shared subscription split the load, each message stored once', async () => {
        const db = fakeDb();
        const g = nextGroup();
        const one = ingest(broker, db, { group: g, clientId: 'split-1-ingest' });
        const two = ingest(broker, db, { group: g, clientId: 'split-2-ingest' });
        await waitFor(() => one.consumer.connected && two.consumer.connected, 'both connected');
        await sleep(50);
        await publish(broker.port, 0, 1000);
        await waitFor(() => db.rows.size === 1000, '1000 rows');
        assert.equal(db.duplicates(), 0);
        assert.ok(one.stats().stored > 300 && two.stats().stored > 300, `${one.stats().stored} / ${two.stats().stored}`);
    });

    it('two workers stamping readings of one attribute at the same moment store every one', async () => {
        // Each stamps arrival times in microseconds of its own (its clock slot); without them
        // two readings could get one (attribute, ts) and the second be taken for a copy.
        const db = fakeDb();
        const g = nextGroup();
        const one = ingest(broker, db, { group: g, clientId: 'clock-1-ingest' });
        const two = ingest(broker, db, { group: g, clientId: 'clock-2-ingest' });
        await waitFor(() => one.consumer.connected && two.consumer.connected, 'both connected');
        await sleep(50);
        const pub = await testClient(broker.port);
        const sent = [];
        for (let i = 0; i < 3000; i += 1) sent.push(pub.publish('s/load/one/seq', String(i)));
        await Promise.all(sent);
        pub.close();
        await waitFor(() => one.stats().received + two.stats().received === 3000, 'all received');
        await waitFor(() => one.stats().buffered + two.stats().buffered === 0, 'all written');
        assert.equal(db.rows.size, 3000, `${3000 - db.rows.size} readings lost to equal timestamps`);
        assert.deepEqual([one.stats().clockSlot, two.stats().clockSlot].sort(), [0, 1]);
    });

    it('a worker leaving the group on stop hands its share to the others; by default it keeps it', async () => {
        const db = fakeDb();
        const g = nextGroup();
        const stays = ingest(broker, db, { group: g, clientId: 'leave-1-ingest' });
        const keeps = ingest(broker, db, { group: g, clientId: 'leave-2-ingest' });
        await waitFor(() => stays.consumer.connected && keeps.consumer.connected, 'both connected');
        await sleep(50);
        running.delete(keeps);
        assert.deepEqual(await keeps.stop(2000), { unwritten: 0, left: false });
        await publish(broker.port, 0, 100);
        await waitFor(() => db.rows.size === 50, 'the share of the one still running');
        await sleep(200);
        assert.equal(db.rows.size, 50, 'the stopped worker\'s share waits in its session');
        const back = ingest(broker, db, { group: g, clientId: 'leave-2-ingest' });
        await waitFor(() => db.rows.size === 100, 'its share, once it is back');
        running.delete(back);
        assert.deepEqual(await back.stop(3000, { leave: true }), { unwritten: 0, left: true });
        await publish(broker.port, 100, 200);
        await waitFor(() => db.rows.size === 200, 'everything, through the remaining worker');
        assert.equal(db.duplicates(), 0);
    });
});

const PG_URL = process.env.OCTOPUS_TEST_PG;

if (!mosquittoBinary() || !PG_URL) {
    test('the broker ingest against Mosquitto and a real PostgreSQL', {
        skip: !PG_URL ? 'OCTOPUS_TEST_PG is not set: the crash test is not run against a real database'
            : 'no mosquitto binary: the crash test is not run',
    }, () => {});
} else describe('the broker ingest against Mosquitto and a real PostgreSQL', () => {
    let pg;
    let broker;
    let client;
    before(async () => {
        broker = await startMosquitto(['max_queued_messages 100000']);
        pg = await migratedSchema(PG_URL, 'octopus_bi');
        client = pg.client;
    });
    after(async () => {
        await Promise.all([...running].map((bi) => bi.stop(2000)));
        running.clear();
        if (pg) await dropSchema(pg);
        if (broker) await broker.stop();
    });

    it('killed after commits whose PUBACKs never counted, restarted: every message stored exactly once', async () => {
        const db = {
            write: (items, receipt) => writeItems(client, items, receipt),
            loadReceipts: () => loadReceipts(client, 'pg-crash-ingest'),
        };
        const a = ingest(broker, db, { group: 'pg', clientId: 'pg-crash-ingest' });
        await waitFor(() => a.consumer.connected, 'the connection');
        await sleep(50);
        losePubacks(a);
        await publish(broker.port, 0, 500, { site: 'pgcrash' });
        const count = async () => (await client.query(`SELECT count(*)::int AS n, count(DISTINCT m.num)::int AS d
            FROM measurements m JOIN attributes t ON t.id = m.attribute_id JOIN devices d ON d.id = t.device_id
            WHERE d.site = 'pgcrash'`)).rows[0];
        for (let n = 0; (await count()).n < 500; n += 1) {
            if (n > 500) throw new Error('timed out waiting for 500 rows');
            // eslint-disable-next-line no-await-in-loop
            await sleep(10);
        }
        await sleep(50); // the last commit's callbacks
        const receipts = await client.query(`SELECT count(*)::int AS n, sum(cardinality(packet_ids))::int AS m FROM ingest_receipts`);
        assert.equal(receipts.rows[0].m, 500, 'the receipts name every committed, unconfirmed message');
        kill(a, db);
        const b = ingest(broker, db, { group: 'pg', clientId: 'pg-crash-ingest' });
        await publish(broker.port, 500, 600, { site: 'pgcrash' });
        for (let n = 0; (await count()).d < 600; n += 1) {
            if (n > 500) throw new Error('timed out waiting for 600 values');
            // eslint-disable-next-line no-await-in-loop
            await sleep(10);
        }
        await waitFor(() => b.stats().inflight === 0, 'everything acknowledged');
        await sleep(200);
        assert.deepEqual(await count(), { n: 600, d: 600 });
        assert.equal(b.stats().redelivered, 500);
    });
});
