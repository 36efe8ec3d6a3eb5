'use strict';
// The Node-RED wrappers (octopus-db, octopus-ingest) in a real Node-RED runtime, with
// node-red-node-test-helper. The database is a fake pool: the real one is store.test.js.
// Assertions inside message handlers are wrapped in try/catch → done(e): Node-RED would
// swallow the exception otherwise.
const { describe, it, before, after, afterEach, test } = require('node:test');
const assert = require('node:assert/strict');
const helper = require('node-red-node-test-helper');
const octopusDb = require('../nodes/node-red-contrib-octopus/octopus-db');
const octopusIngest = require('../nodes/node-red-contrib-octopus/octopus-ingest');
const { INGEST_SQL, INGEST_WITH_RECEIPT_SQL } = require('../nodes/node-red-contrib-octopus/lib/store');
const { mosquittoBinary, startMosquitto, testClient } = require('./helpers/mosquitto');
// Node-RED's own MQTT nodes: the ingest reads its broker settings from an mqtt-broker node.
const mqttNodes = require('@node-red/nodes/core/network/10-mqtt.js');

helper.init(require.resolve('node-red'));

// As in flows/octopus.json: flow nodes on a tab (with x/y), the config node global.
const flow = (ingestProps = {}) => [
    { id: 'tab', type: 'tab', label: 'test' },
    { id: 'db', type: 'octopus-db', name: 'test db' },
    { id: 'in', type: 'octopus-ingest', z: 'tab', x: 0, y: 0, db: 'db', lingerMs: '5', wires: [['live'], ['stats']], ...ingestProps },
    { id: 'live', type: 'helper', z: 'tab', x: 0, y: 0 },
    { id: 'stats', type: 'helper', z: 'tab', x: 0, y: 0 },
];

/** A pool stand-in: records queries, fails the first `failures` of them; no receipts. */
function fakePool(failures = 0) {
    const pool = { queries: [], failures };
    pool.query = async (text, values) => {
        if (pool.failures > 0) {
            pool.failures -= 1;
            throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
        }
        if (/FROM ingest_receipts/.test(text)) return { rows: [] };
        if (/ingest_claim_clock_slot/.test(text)) return { rows: [{ slot: 4 }] };
        pool.queries.push({ text, values });
        // the readings: m_key's elements, sent as an array literal (lib/pg-array.js)
        return { rows: [{ inserted: values[8] === '{}' ? 0 : values[8].split(',').length }] };
    };
    return pool;
}

/** Resolves once `condition()` holds (polled every 10 ms), rejects after `ms`. */
async function until(condition, ms = 5000) {
    const deadline = Date.now() + ms;
    while (!condition()) {
        if (Date.now() > deadline) throw new Error(`not so after ${ms} ms: ${condition}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
    }
}

function load(props) {
    return new Promise((resolve) => {
        helper.load([octopusDb, octopusIngest], flow(props), () => {
            const db = helper.getNode('db');
            const pool = fakePool(props && props.failures);
            db.getPool = () => pool;
            resolve({ db, pool, ingest: helper.getNode('in') });
        });
    });
}

describe('octopus-ingest in Node-RED', () => {
    before(() => new Promise((resolve) => helper.startServer(resolve)));
    after(() => new Promise((resolve) => helper.stopServer(resolve)));
    afterEach(() => helper.unload());

    it('loads both nodes with their names', async () => {
        const { db, ingest } = await load();
        assert.equal(db.name, 'test db');
        assert.equal(ingest.type, 'octopus-ingest');
        assert.equal(typeof db.pool.query, 'function'); // the node's own pg.Pool
    });

    it('stores a batch with one ingest_batch call and publishes it on octopus/live', async () => {
        const { pool, ingest } = await load();
        const live = helper.getNode('live');
        const received = new Promise((resolve, reject) => {
            live.on('input', (msg) => {
                try {
                    assert.equal(msg.topic, 'octopus/live');
                    assert.equal(msg.retain, false);
                    assert.equal(msg.payload.readings.length, 1);
                    assert.equal(msg.payload.readings[0].value, 23.5);
                    assert.equal(msg.payload.readings[0].device, 'servidor1');
                    assert.equal(msg.payload.rejects, 1);
                    resolve();
                } catch (e) {
                    reject(e);
                }
            });
        });
        ingest.receive({ topic: 'oficina/servidores/servidor1/temperatura', payload: Buffer.from('23.5') });
        ingest.receive({ topic: 'a//c/d', payload: Buffer.from('1') });
        ingest.receive({ topic: 'a/b/c/d/set', payload: Buffer.from('1') });
        await received;
        await until(() => pool.queries.length === 1);
        assert.equal(pool.queries[0].text, INGEST_SQL);
        assert.equal(pool.queries[0].values.length, 21);
        assert.equal(pool.queries[0].values[18], '{"topic level 2 is empty"}');
    });

    it('takes a string payload too (mqtt in not set to Buffer), with a warning', async () => {
        const { pool, ingest } = await load();
        const live = helper.getNode('live');
        const received = new Promise((resolve) => live.on('input', resolve));
        ingest.receive({ topic: 'a/b/c/d', payload: '7' });
        await received;
        await until(() => pool.queries.length === 1);
        assert.equal(pool.queries[0].values[10], '{7}');
    });

    it('sends retained statistics on output 2 at start', async () => {
        await load({ worker: 'worker-1' });
        const stats = helper.getNode('stats');
        const msg = await new Promise((resolve) => stats.on('input', resolve));
        assert.equal(msg.topic, 'octopus/stats/ingest/worker-1');
        assert.equal(msg.retain, true);
        assert.equal(msg.payload.worker, 'worker-1');
        for (const k of ['received', 'stored', 'rejected', 'batches', 'errors', 'since']) assert.ok(k in msg.payload, k);
    });

    it('survives a failing database, retries and loses nothing; the live view does not wait', async () => {
        const { pool, ingest } = await load({ failures: 2 });
        const live = helper.getNode('live');
        const received = new Promise((resolve) => live.on('input', resolve));
        ingest.receive({ topic: 'a/b/c/d', payload: Buffer.from('1') });
        const msg = await received; // INGEST_LIVE_MS after it was taken
        assert.equal(msg.payload.readings.length, 1);
        assert.equal(pool.queries.length, 0, 'shown live while the database fails');
        await until(() => pool.queries.length === 1); // after two failures and 0.5 s + 1 s of backoff
        assert.equal(ingest.core.stats().errors, 2);
        const warnings = helper.log().args.filter((a) => a[0].level === helper.log().WARN).map((a) => a[0].msg);
        assert.ok(warnings.some((m) => /failed \(connect ECONNREFUSED.*retrying in 0.5 s/.test(m)), warnings.join('\n'));
    });

    it('on stop, writes what is buffered before the pool is closed', async () => {
        const { db, pool, ingest } = await load({ lingerMs: '60000' });
        const order = [];
        const query = pool.query;
        pool.query = async (...args) => {
            await new Promise((resolve) => setTimeout(resolve, 50)); // a write still in flight
            order.push('committed');
            return query(...args);
        };
        db.pool.end = async () => { order.push('end'); }; // the node's real pool, never connected
        ingest.receive({ topic: 'a/b/c/d', payload: Buffer.from('1') });
        await helper.unload();
        assert.deepEqual(order, ['committed', 'end']);
    });

    it('without a database config it says so and takes messages without crashing', async () => {
        await new Promise((resolve) => helper.load([octopusDb, octopusIngest],
            [{ id: 'in', type: 'octopus-ingest', db: 'missing', wires: [[], []] }], resolve));
        helper.getNode('in').receive({ topic: 'a/b/c/d', payload: Buffer.from('1') });
        const errors = helper.log().args.filter((a) => a[0].level === helper.log().ERROR).map((a) => a[0].msg);
        assert.ok(errors.some((m) => /needs an octopus-db config node/.test(m)));
    });
});

const waitUntil = async (probe, what, timeoutMs = 10000) => {
    const deadline = Date.now() + timeoutMs;
    while (!probe()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        // eslint-disable-next-line no-await-in-loop
        await new Promise((r) => setTimeout(r, 20));
    }
};

if (!mosquittoBinary()) {
    test('octopus-ingest subscribing through a real Mosquitto', {
        skip: 'no mosquitto binary (set OCTOPUS_TEST_MOSQUITTO, or install mosquitto): the node is not tested against a broker',
    }, () => {});
} else describe('octopus-ingest subscribing through a real Mosquitto', () => {
    let broker;
    before(async () => {
        broker = await startMosquitto(['max_queued_messages 100000']);
        await new Promise((resolve) => helper.startServer(resolve));
    });
    after(async () => {
        await new Promise((resolve) => helper.stopServer(resolve));
        if (broker) await broker.stop();
    });
    afterEach(() => helper.unload());

    // As in flows/octopus.json: the broker config node, the ingest subscribing through it.
    const brokerFlow = (port) => [
        { id: 'tab', type: 'tab', label: 'test' },
        { id: 'db', type: 'octopus-db', name: 'test db' },
        {
            id: 'octopus-broker', type: 'mqtt-broker', name: 'test broker', broker: '127.0.0.1', port: String(port),
            clientid: 'nr-node-test', protocolVersion: '5', cleansession: true, keepalive: '60',
        },
        {
            id: 'in', type: 'octopus-ingest', z: 'tab', x: 0, y: 0, db: 'db', broker: 'octopus-broker',
            topic: '$share/node-test/#', lingerMs: '5', receiveMaximum: '100', wires: [['live'], ['stats']],
        },
        { id: 'live', type: 'helper', z: 'tab', x: 0, y: 0 },
        { id: 'stats', type: 'helper', z: 'tab', x: 0, y: 0 },
    ];

    it('subscribes itself with a client id of its own, stores, acknowledges after the commit, reports', async () => {
        const pool = fakePool();
        await new Promise((resolve) => helper.load([mqttNodes, octopusDb, octopusIngest], brokerFlow(broker.port), resolve));
        helper.getNode('db').getPool = () => pool;
        const ingest = helper.getNode('in');
        const readings = [];
        helper.getNode('live').on('input', (msg) => readings.push(...msg.payload.readings));
        await waitUntil(() => ingest.ingest.consumer.connected, 'the connection');
        assert.equal(ingest.ingest.consumer.opts.clientId, 'nr-node-test-ingest');
        assert.equal(ingest.ingest.consumer.receiveMaximum, 100);
        await new Promise((r) => setTimeout(r, 50)); // the SUBACK
        const pub = await testClient(broker.port);
        await Promise.all(['1', '2', '3'].map((v) => pub.publish('oficina/servidores/servidor1/temperatura', v)));
        pub.close();
        await waitUntil(() => readings.length === 3, 'three readings on octopus/live');
        await waitUntil(() => ingest.ingest.consumer.counters.acked === 3, 'three PUBACKs');
        assert.equal(pool.queries[0].text, INGEST_WITH_RECEIPT_SQL);
        assert.equal(pool.queries[0].values[21], 'nr-node-test-ingest', 'the receipt names the worker');
        const stats = ingest.ingest.stats();
        assert.equal(stats.clockSlot, 4, 'its arrival-clock slot, claimed before subscribing');
        for (const k of ['inflight', 'redelivered', 'acked', 'received', 'stored']) assert.ok(k in stats, k);
        const statuses = helper.log().args.filter((a) => a[0].type === 'octopus-ingest').map((a) => a[0].msg);
        assert.ok(statuses.some((m) => /connected to nr-node-test-ingest@127\.0\.0\.1/.test(m)), statuses.join('\n'));
    });

    it('an unusable broker address is reported, and the input still works', async () => {
        const flow = brokerFlow(broker.port);
        flow[2].broker = 'ws://127.0.0.1:9001';
        const pool = fakePool();
        await new Promise((resolve) => helper.load([mqttNodes, octopusDb, octopusIngest], flow, resolve));
        helper.getNode('db').getPool = () => pool;
        const ingest = helper.getNode('in');
        assert.equal(ingest.ingest, null);
        const errors = helper.log().args.filter((a) => a[0].level === helper.log().ERROR).map((a) => a[0].msg);
        assert.ok(errors.some((m) => /MQTT over TCP or TLS, not ws:/.test(m)), errors.join('\n'));
        const live = new Promise((resolve) => helper.getNode('live').on('input', resolve));
        ingest.receive({ topic: 'a/b/c/d', payload: Buffer.from('1') });
        await live;
        assert.equal(pool.queries[0].text, INGEST_SQL);
    });
});

