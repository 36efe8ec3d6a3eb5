'use strict';
// The octopus-modbus node in a real Node-RED runtime (node-red-node-test-helper): without a
// database, with an unreachable one, and (OCTOPUS_TEST_PG set, see store.test.js) polling a
// device served by modbus-serial's ServerTCP, then closing and releasing its lock.
const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const net = require('net');
const helper = require('node-red-node-test-helper');
const ModbusRTU = require('modbus-serial');
const octopusDb = require('../nodes/node-red-contrib-octopus/octopus-db');
const octopusModbus = require('../nodes/node-red-contrib-octopus/octopus-modbus');
const { migratedSchema, dropSchema } = require('./helpers/database');
const { CLOSED_BY_ITSELF_MS } = require('./helpers/node-close');

helper.init(require.resolve('node-red'));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(check, ms, what) {
    const end = Date.now() + ms;
    while (!check()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await sleep(10); // eslint-disable-line no-await-in-loop
    }
}
function freePort() {
    return new Promise((resolve) => {
        const s = net.createServer().listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}
const load = (flow) => new Promise((resolve) => { helper.load([octopusDb, octopusModbus], flow, resolve); });
/** The statuses node `id` has shown, oldest first. */
const statuses = (id) => helper.getNode(id).status.getCalls().filter((c) => c.thisValue.id === id).map((c) => c.args[0]);
const lastStatus = (id) => statuses(id).slice(-1)[0] || {};

// The octopus-db node names the environment variables it connects with.
const DB_NODE = {
    id: 'db', type: 'octopus-db', hostEnv: 'MODBUS_TEST_PGHOST', portEnv: 'MODBUS_TEST_PGPORT',
    databaseEnv: 'MODBUS_TEST_PGDATABASE', userEnv: 'MODBUS_TEST_PGUSER', passwordEnv: 'MODBUS_TEST_PGPASSWORD',
};
const flow = (extra = {}) => [
    { id: 'tab', type: 'tab', label: 'test' },
    DB_NODE,
    { id: 'm', type: 'octopus-modbus', z: 'tab', db: 'db', refreshS: '1', statsIntervalS: '1', wires: [['out']], ...extra },
    { id: 'out', type: 'helper', z: 'tab' },
];

describe('octopus-modbus in Node-RED', () => {
    before(() => new Promise((resolve) => helper.startServer(resolve)));
    after(() => new Promise((resolve) => helper.stopServer(resolve)));
    afterEach(() => helper.unload());

    it('without a database: a red status and an error, no crash', async () => {
        await load(flow({ db: '' }));
        assert.deepEqual(lastStatus('m'), { fill: 'red', shape: 'dot', text: 'no database configured' });
        const errors = helper.log().args.filter((a) => a[0].type === 'octopus-modbus' && a[0].level === helper.log().ERROR);
        assert.match(errors[0][0].msg, /needs an octopus-db config node/);
    });

    it('with the database unreachable: says so, polls nothing, closes at once', async () => {
        Object.assign(process.env, { MODBUS_TEST_PGHOST: '127.0.0.1', MODBUS_TEST_PGPORT: String(await freePort()), MODBUS_TEST_PGUSER: 'nobody' });
        await load(flow());
        const received = [];
        helper.getNode('out').on('input', (msg) => received.push(msg));
        await until(() => lastStatus('m').text === 'database unreachable', 3000, 'the status');
        assert.deepEqual(lastStatus('m'), { fill: 'red', shape: 'ring', text: 'database unreachable' });
        const warnings = helper.log().args.filter((a) => a[0].type === 'octopus-modbus' && a[0].level === helper.log().WARN);
        assert.match(warnings[0][0].msg, /cannot read the Modbus devices from nobody@127\.0\.0\.1:\d+\/.*ECONNREFUSED.*retrying every 1 s/);
        await sleep(1100); // a stats interval: the stats say what this worker does
        assert.ok(received.every((m) => m.topic.startsWith('octopus/stats/modbus/')));
        const t0 = Date.now();
        await helper.unload();
        assert.ok(Date.now() - t0 < CLOSED_BY_ITSELF_MS, `closed in ${Date.now() - t0} ms`);
    });

    const PG_URL = process.env.OCTOPUS_TEST_PG;
    it('polls a device from modbus_devices, then closes and frees the polling lock', {
        skip: PG_URL ? false : 'OCTOPUS_TEST_PG is not set (a libpq URL of a running PostgreSQL): not tested against a real database',
    }, async () => {
        const db = await migratedSchema(PG_URL, 'octopus_modbus_node');
        const port = await freePort();
        const server = new ModbusRTU.ServerTCP({
            getInputRegister: (addr) => (addr === 0 ? 2305 : 0), getHoldingRegister: () => 2,
        }, { host: '127.0.0.1', port, unitID: 255 });
        try {
            await new Promise((resolve) => server.on('initialized', resolve));
            const u = new URL(PG_URL);
            Object.assign(process.env, {
                MODBUS_TEST_PGHOST: u.hostname, MODBUS_TEST_PGPORT: u.port || '5432', MODBUS_TEST_PGDATABASE: u.pathname.slice(1),
                MODBUS_TEST_PGUSER: decodeURIComponent(u.username), MODBUS_TEST_PGPASSWORD: decodeURIComponent(u.password),
                PGOPTIONS: `-c search_path=${db.schema}`,
            });
            await db.client.query(`INSERT INTO modbus_devices (site, room, name, host, port, profile, poll_interval_ms)
                VALUES ('plant', 'hall', 'osm1', '127.0.0.1', $1, 'osm27', 200)`, [port]);
            await load(flow({ worker: 'node-test' }));
            const received = [];
            helper.getNode('out').on('input', (msg) => received.push(msg));
            await until(() => received.some((m) => m.topic === 'plant/hall/osm1/estado'), 5000, 'a reading');
            const ia = received.find((m) => m.topic === 'plant/hall/osm1/ia');
            assert.deepEqual({ ...ia, _msgid: undefined, payload: JSON.parse(ia.payload).value },
                { topic: 'plant/hall/osm1/ia', payload: 230.5, qos: 1, retain: false, _msgid: undefined });
            assert.equal(JSON.parse(received.find((m) => m.topic === 'plant/hall/osm1/estado').payload).value, 'lockout');
            await until(() => lastStatus('m').text === 'polling 1 device', 2000, 'the status');
            await until(() => received.some((m) => m.topic === 'octopus/stats/modbus/node-test'), 2000, 'the stats');
            const t0 = Date.now();
            await helper.unload();
            assert.ok(Date.now() - t0 < CLOSED_BY_ITSELF_MS, `closed in ${Date.now() - t0} ms`);
            const locks = await db.client.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 7242003");
            assert.equal(locks.rows[0].n, 0, 'the polling lock is released');
        } finally {
            delete process.env.PGOPTIONS;
            await new Promise((resolve) => server.close(resolve));
            await dropSchema(db);
        }
    });
});
