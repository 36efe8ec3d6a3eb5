'use strict';
// The Node-RED wrappers (octopus-db, octopus-ingest) in a real Node-RED runtime, with
// node-red-node-test-helper. The database is a fake pool: the real one is store.test.js.
// Assertions inside message handlers are wrapped in try/catch → done(e): Node-RED would
// swallow the exception otherwise.
const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const helper = require('node-red-node-test-helper');
const octopusDb = require('../nodes/node-red-contrib-octopus/octopus-db');
const octopusIngest = require('../nodes/node-red-contrib-octopus/octopus-ingest');
const { INGEST_SQL } = require('../nodes/node-red-contrib-octopus/lib/store');

helper.init(require.resolve('node-red'));

// As in flows/octopus.json: flow nodes on a tab (with x/y), the config node global.
const flow = (ingestProps = {}) => [
    { id: 'tab', type: 'tab', label: 'test' },
    { id: 'db', type: 'octopus-db', name: 'test db' },
    { id: 'in', type: 'octopus-ingest', z: 'tab', x: 0, y: 0, db: 'db', lingerMs: '5', wires: [['live'], ['stats']], ...ingestProps },
    { id: 'live', type: 'helper', z: 'tab', x: 0, y: 0 },
    { id: 'stats', type: 'helper', z: 'tab', x: 0, y: 0 },
];

/** A pool stand-in: records queries, fails the first `failures` of them. */
function fakePool(failures = 0) {
    const pool = { queries: [], failures };
    pool.query = async (text, values) => {
        if (pool.failures > 0) {
            pool.failures -= 1;
            throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
        }
        pool.queries.push({ text, values });
        return { rows: [{ inserted: values[0].length }] };
    };
    return pool;
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
        assert.equal(pool.queries.length, 1);
        assert.equal(pool.queries[0].text, INGEST_SQL);
        assert.equal(pool.queries[0].values.length, 17);
        assert.deepEqual(pool.queries[0].values[14], ['topic level 2 is empty']);
    });

    it('takes a string payload too (mqtt in not set to Buffer), with a warning', async () => {
        const { pool, ingest } = await load();
        const live = helper.getNode('live');
        const received = new Promise((resolve) => live.on('input', resolve));
        ingest.receive({ topic: 'a/b/c/d', payload: '7' });
        await received;
        assert.deepEqual(pool.queries[0].values[5], [7]);
    });

    it('sends retained statistics on output 2 at start', async () => {
        await load({ worker: 'worker-1' });
        const stats = helper.getNode('stats');
        const msg = await new Promise((resolve) => stats.on('input', resolve));
        assert.equal(msg.topic, 'octopus/stats/ingest');
        assert.equal(msg.retain, true);
        assert.equal(msg.payload.worker, 'worker-1');
        for (const k of ['received', 'stored', 'rejected', 'batches', 'errors', 'since']) assert.ok(k in msg.payload, k);
    });

    it('survives a failing database, retries and loses nothing', async () => {
        const { pool, ingest } = await load({ failures: 2 });
        const live = helper.getNode('live');
        const received = new Promise((resolve) => live.on('input', resolve));
        ingest.receive({ topic: 'a/b/c/d', payload: Buffer.from('1') });
        const msg = await received; // after two failures and 0.5 s + 1 s of backoff
        assert.equal(msg.payload.readings.length, 1);
        assert.equal(pool.queries.length, 1);
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
