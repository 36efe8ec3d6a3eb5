'use strict';
// The fleet (lib/modbus-fleet.js) and the database side (lib/modbus-devices.js): the diff and
// the statements as plain functions, then the whole fleet against a real PostgreSQL when
// OCTOPUS_TEST_PG is set (see store.test.js) and a device served by modbus-serial's own
// ServerTCP: device list reload, stats rows, one polling worker, the lock lost.
const { describe, it, before, after, test } = require('node:test');
const assert = require('node:assert/strict');
const net = require('net');
const { Pool } = require('pg');
const ModbusRTU = require('modbus-serial');
const { migratedSchema, dropSchema } = require('./helpers/database');
const {
    deviceKey, diffDevices, statsParams, writeStats, STATS_SQL,
} = require('../nodes/node-red-contrib-octopus/lib/modbus-devices');
const {
    ModbusFleet, effectiveTimeout, phaseOf,
} = require('../nodes/node-red-contrib-octopus/lib/modbus-fleet');
const { connectionLost } = require('../nodes/node-red-contrib-octopus/lib/worker-lock');
const { ProfileStore, DEFAULT_PROFILES_DIR } = require('../nodes/node-red-contrib-octopus/lib/modbus-profile-store');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(check, ms, what) {
    const end = Date.now() + ms;
    // eslint-disable-next-line no-await-in-loop
    while (!(await check())) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await sleep(10); // eslint-disable-line no-await-in-loop
    }
}

test('modbus devices: the diff starts new rows, restarts changed ones and stops the rest', () => {
    const row = { id: 1, site: 's', room: 'r', name: 'n', host: 'h', port: 502, unit_id: 1, profile: 'osm27', poll_interval_ms: 1000 };
    const key = deviceKey(row, '10:1');
    assert.equal(deviceKey({ ...row, enabled: false, updated_at: new Date() }, '10:1'), key, 'only what changes the polling counts');
    assert.notEqual(deviceKey({ ...row, port: 5020 }, '10:1'), key);
    assert.notEqual(deviceKey(row, '10:2'), key, 'an edited profile file restarts its devices');
    const running = new Map([[1, 'a'], [2, 'b'], [3, 'c']]);
    const wanted = new Map([[1, 'a'], [2, 'B'], [4, 'd']]);
    assert.deepEqual(diffDevices(running, wanted), { start: [4], restart: [2], stop: [3] });
    assert.deepEqual(diffDevices(new Map(), new Map()), { start: [], restart: [], stop: [] });
});

test('modbus devices: the stats are one statement with parameters only, one array per column', () => {
    const at = new Date('2026-11-22T12:00:00Z');
    const rows = [
        { device_id: 7, since: at, status: 'online', polls: 10, ok: 9, timeouts: 1, exceptions: 0, connection_errors: 0, garbage: 0,
            overflows: 0, consecutive_failures: 0, last_ok_at: at, last_error: "timeout: it's late", last_error_at: at, late_ms_max: 2.6 },
        { device_id: 8, since: at, status: null, polls: 0, ok: 0, timeouts: 0, exceptions: 0, connection_errors: 0, garbage: 0,
            overflows: 0, consecutive_failures: 0, last_ok_at: null, last_error: null, last_error_at: null, late_ms_max: null },
    ];
    const params = statsParams('w1', rows);
    assert.equal(params.length, 16);
    assert.equal(params[0], 'w1');
    assert.deepEqual(params[1], [7, 8]);
    assert.deepEqual(params[15], [3, null], 'late_ms_max rounded to whole ms');
    assert.equal((STATS_SQL.match(/\$\d+/g) || []).length, 16);
    assert.doesNotMatch(STATS_SQL, /w1|it's/, 'no value pasted into the SQL');
    assert.match(STATS_SQL, /^INSERT INTO modbus_poll_stats .*\sFROM unnest\(\$2::int\[\], \$3::timestamptz\[\]/s);
    assert.match(STATS_SQL, /ON CONFLICT \(device_id\) DO UPDATE SET since = EXCLUDED\.since/);
});

test('worker lock: a refused statement keeps the lock, a lost or stuck connection does not', () => {
    assert.equal(connectionLost(Object.assign(new Error('relation "modbus_devices" does not exist'), { code: '42P01' })), false);
    assert.equal(connectionLost(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })), true);
    assert.equal(connectionLost(Object.assign(new Error('connection failure'), { code: '08006' })), true);
    assert.equal(connectionLost(new Error('Connection terminated unexpectedly')), true);
    assert.equal(connectionLost(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })), true);
});

test('modbus fleet: timeouts end before the next tick; devices are spread over the interval', () => {
    assert.equal(effectiveTimeout(1000, 1000), 800);
    assert.equal(effectiveTimeout(300, 1000), 300);
    assert.equal(effectiveTimeout(1000, 60000), 1000);
    const phases = Array.from({ length: 100 }, (_, i) => phaseOf(i + 1, 1000));
    assert.ok(phases.every((p) => p >= 0 && p < 1000));
    const perTenth = new Array(10).fill(0);
    for (const p of phases) perTenth[Math.floor(p / 100)] += 1;
    assert.ok(perTenth.every((n) => n >= 8 && n <= 12), `100 devices over 10 slices: ${perTenth}`);
});

/** A free TCP port on 127.0.0.1. */
function freePort() {
    return new Promise((resolve) => {
        const s = net.createServer().listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

/** An OSM27 served by modbus-serial's ServerTCP: values chosen to check each decoding. */
async function osm27Server(port) {
    const input = new Array(16).fill(0);
    Object.assign(input, { 0: 2305, 3: 0x2345, 4: 0x0001, 9: 0xffff, 10: 0xfb2e, 13: 0x3f59, 14: 0x999a });
    const server = new ModbusRTU.ServerTCP({
        getInputRegister: (addr) => input[addr] || 0,
        getHoldingRegister: (addr) => (addr === 100 ? 1 : 0),
    }, { host: '127.0.0.1', port, unitID: 255 });
    await new Promise((resolve) => server.on('initialized', resolve));
    return server;
}

const URL = process.env.OCTOPUS_TEST_PG;
if (!URL) {
    test('modbus fleet against a real PostgreSQL', {
        skip: 'OCTOPUS_TEST_PG is not set (a libpq URL of a running PostgreSQL): not tested against a real database',
    }, () => {});
} else describe('modbus fleet against a real PostgreSQL', () => {
    let db;
    let pool;
    let server;
    let port;
    const lockKey = 7242003000 + (process.pid % 1000); // this run's own lock
    const fleets = [];
    const settings = { refreshMs: 100, statsIntervalMs: 200, timeoutMs: 500, backoffMaxMs: 1000, offlineAfter: 2 };

    before(async () => {
        db = await migratedSchema(URL, 'octopus_modbus');
        pool = new Pool({ connectionString: URL, options: `-c search_path=${db.schema}`, max: 4 });
        port = await freePort();
        server = await osm27Server(port);
    });
    after(async () => {
        await Promise.all(fleets.map((f) => f.stop()));
        if (server) await new Promise((resolve) => server.close(resolve));
        if (pool) await pool.end();
        if (db) await dropSchema(db);
    });

    function fleet(worker) {
        const sent = [];
        const events = [];
        const f = new ModbusFleet({
            getPool: () => pool, profiles: new ProfileStore(DEFAULT_PROFILES_DIR), worker, settings, lockKey,
            publish: (msgs) => sent.push(...msgs), onEvent: (e) => events.push(e),
        });
        Object.assign(f, { sent, events });
        fleets.push(f);
        f.start();
        return f;
    }
    const q = (text, values) => db.client.query(text, values);
    const latest = (f, topic) => [...f.sent].reverse().find((m) => m.topic === topic);

    it('polls the enabled devices, reports a bad profile, writes the stats; one worker only', async () => {
        const { rows: [d1] } = await q(`INSERT INTO modbus_devices (site, room, name, host, port, unit_id, profile, poll_interval_ms)
            VALUES ('plant', 'hall', 'osm1', '127.0.0.1', $1, 1, 'osm27', 100) RETURNING id`, [port]);
        const { rows: [d2] } = await q(`INSERT INTO modbus_devices (site, room, name, host, port, profile)
            VALUES ('plant', 'hall', 'ghost', '127.0.0.1', 1, 'no-such-model') RETURNING id`);
        await q(`INSERT INTO modbus_devices (site, room, name, host, port, profile, enabled)
            VALUES ('plant', 'hall', 'off', '127.0.0.1', 1, 'osm27', false)`);
        const a = fleet('worker-a');
        await until(() => latest(a, 'plant/hall/osm1/fp'), 3000, 'a reading');
        assert.equal(a.state, 'polling');
        const value = (attr) => JSON.parse(latest(a, `plant/hall/osm1/${attr}`).payload);
        assert.deepEqual(value('ia').value, 230.5);
        assert.deepEqual(value('ia').unit, 'A');
        assert.deepEqual(value('va').value, 7456.5);
        assert.deepEqual(value('p_act').value, -1.234);
        assert.deepEqual(value('fp').value, 0.85);
        assert.deepEqual(value('estado'), { value: 'closed', ts: value('estado').ts });
        assert.deepEqual(latest(a, 'plant/hall/osm1/status'), { topic: 'plant/hall/osm1/status', payload: 'online', qos: 1, retain: true });
        assert.ok(!a.sent.some((m) => m.topic.startsWith('plant/hall/off/')), 'a disabled device is not polled');
        const bad = a.events.find((e) => e.type === 'bad-profile');
        assert.equal(bad.device.id, d2.id);
        assert.match(bad.problem, /no-such-model\.json does not exist/);

        await until(async () => (await q('SELECT count(*)::int AS n FROM modbus_poll_stats WHERE polls > 0')).rows[0].n === 1, 2000, 'stats rows');
        const stats = (await q('SELECT * FROM modbus_poll_stats ORDER BY device_id')).rows;
        assert.deepEqual(stats.map((r) => [r.device_id, r.worker, r.status]), [[d1.id, 'worker-a', 'online'], [d2.id, 'worker-a', null]]);
        assert.ok(Number(stats[0].ok) >= 1);
        assert.match(stats[1].last_error, /does not exist/);
        const mqttStats = JSON.parse(latest(a, 'octopus/stats/modbus/worker-a').payload);
        assert.equal(mqttStats.worker, 'worker-a');
        assert.equal(mqttStats.state, 'polling');
        assert.deepEqual(Object.keys(mqttStats.devices[0]), [
            'device_id', 'site', 'room', 'name', 'host', 'port', 'unit_id', 'profile', 'poll_interval_ms', 'since', 'status', 'polls',
            'ok', 'timeouts', 'exceptions', 'connection_errors', 'garbage', 'overflows', 'consecutive_failures', 'last_ok_at',
            'last_error', 'last_error_at', 'late_ms_max']);

        const b = fleet('worker-b');
        await until(() => b.state === 'standby', 2000, 'the second worker to stand by');
        await sleep(300);
        assert.equal(b.sent.filter((m) => m.topic.startsWith('plant/')).length, 0, 'the second worker polls nothing');
        assert.equal(b.summary().devices, 0);
    });

    it('restarts a changed device, stops a disabled one (offline), and skips stats of deleted devices', async () => {
        const a = fleets[0];
        const { rows: [d1] } = await q("SELECT id FROM modbus_devices WHERE name = 'osm1'");
        const before = a.entries.get(d1.id).poller;
        await q('UPDATE modbus_devices SET poll_interval_ms = 150 WHERE id = $1', [d1.id]);
        await until(() => a.entries.get(d1.id) && a.entries.get(d1.id).poller !== before, 2000, 'a restart');
        assert.equal(a.entries.get(d1.id).poller.interval, 150);
        assert.equal(a.entries.get(d1.id).poller.status, 'online', 'same topic: its known status carried over');
        const onlines = a.sent.filter((m) => m.topic === 'plant/hall/osm1/status').length;
        await q('UPDATE modbus_devices SET enabled = false WHERE id = $1', [d1.id]);
        await until(() => !a.entries.has(d1.id), 2000, 'the poller to stop');
        assert.equal(latest(a, 'plant/hall/osm1/status').payload, 'offline');
        assert.equal(a.sent.filter((m) => m.topic === 'plant/hall/osm1/status').length, onlines + 1);
        await q('UPDATE modbus_devices SET enabled = true WHERE id = $1', [d1.id]);
        await until(() => a.summary().devices === 1, 2000, 'polling again');

        // a device deleted between a refresh and a stats write: skipped, not a foreign-key error
        const rows = a.statsRows().map((r) => ({ ...r, device_id: r.device_id + 1000 }));
        await writeStats(db.client, 'worker-a', rows);
    });

    it('stops polling at once when the lock connection is lost; one worker takes over', async () => {
        const [a, b] = fleets;
        const { rows } = await q(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
            AND (classid::bigint << 32) + objid::bigint = $1`, [lockKey]);
        assert.equal(rows.length, 1, 'one session holds the lock');
        await q('SELECT pg_terminate_backend($1)', [rows[0].pid]);
        await until(() => a.state !== 'polling', 1000, 'the worker to notice');
        assert.equal(a.summary().devices, 0, 'its pollers stopped');
        assert.ok(a.events.some((e) => e.type === 'lock-lost'));
        await until(() => a.state === 'polling' || b.state === 'polling', 2000, 'a worker to take over');
        await sleep(300);
        assert.equal([a, b].filter((f) => f.state === 'polling').length, 1, 'exactly one worker polls');
        const poller = [a, b].find((f) => f.state === 'polling');
        await until(() => poller.summary().devices === 1, 2000, 'the device polled by the new holder');
    });
});
