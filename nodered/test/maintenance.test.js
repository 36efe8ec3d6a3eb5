'use strict';
// The maintenance schedule and settings (plain module), the node in a real Node-RED runtime
// with a fake pool, and run_maintenance() itself against a real PostgreSQL when
// OCTOPUS_TEST_PG is set (see store.test.js).
const { describe, it, before, after, afterEach, test } = require('node:test');
const assert = require('node:assert/strict');
const helper = require('node-red-node-test-helper');
const octopusDb = require('../nodes/node-red-contrib-octopus/octopus-db');
const octopusMaintenance = require('../nodes/node-red-contrib-octopus/octopus-maintenance');
const {
    resolveMaintenanceSettings, runMaintenance, describeRun,
} = require('../nodes/node-red-contrib-octopus/lib/maintenance');
const { schedule } = require('../nodes/node-red-contrib-octopus/lib/schedule');
const { writeItems } = require('../nodes/node-red-contrib-octopus/lib/store');
const { migratedSchema, dropSchema } = require('./helpers/database');

helper.init(require.resolve('node-red'));

const tick = () => new Promise((resolve) => setImmediate(resolve));

test('maintenance settings: node property, else environment, else default; bad values reported', () => {
    assert.deepEqual(resolveMaintenanceSettings({}, {}).settings, { intervalS: 10, rawDays: 30, rollupDays: 365, rejectDays: 30 });
    const { settings, problems } = resolveMaintenanceSettings(
        { intervalS: '2', rawDays: '', rejectDays: '3' },
        { RETENTION_RAW_DAYS: '7', RETENTION_ROLLUP_DAYS: 'a year', MAINTENANCE_INTERVAL_S: '60', RETENTION_REJECTS_DAYS: '9' });
    assert.deepEqual(settings, { intervalS: 2, rawDays: 7, rollupDays: 365, rejectDays: 3 });
    assert.deepEqual(problems, ['RETENTION_ROLLUP_DAYS="a year" is not a whole number ≥ 0; using 365']);
    assert.match(resolveMaintenanceSettings({ intervalS: '0' }, {}).problems[0], /^property intervalS="0" is not a whole number ≥ 1/);
    assert.equal(resolveMaintenanceSettings({}, { RETENTION_RAW_DAYS: '0' }).settings.rawDays, 0, '0 keeps for ever');
});

test('maintenance schedule: never two runs at once, the next one an interval after the last ended', async () => {
    const timers = [];
    const fakeTimers = { setTimeout: (fn, ms) => { timers.push({ fn, ms }); return timers.length; }, clearTimeout: () => {} };
    let running = 0;
    let maxRunning = 0;
    let finish;
    const run = () => new Promise((resolve) => {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        finish = () => { running -= 1; resolve({ refreshed_minutes: 1 }); };
    });
    const results = [];
    const job = schedule(run, 5000, { onResult: (r) => results.push(r), timers: fakeTimers });
    await tick();
    assert.equal(running, 1, 'the first run starts at once');
    assert.equal(timers.length, 0, 'no next run is planned while one is in progress');
    finish();
    await tick();
    assert.deepEqual(results, [{ refreshed_minutes: 1 }]);
    assert.equal(timers.length, 1);
    assert.equal(timers[0].ms, 5000);
    timers[0].fn();
    await tick();
    assert.equal(running, 1);
    const stopped = job.stop();
    let stopDone = false;
    stopped.then(() => { stopDone = true; });
    await tick();
    assert.equal(stopDone, false, 'stop waits for the run in progress');
    finish();
    await stopped;
    assert.equal(timers.length, 1, 'nothing planned after stop');
    assert.equal(maxRunning, 1);
});

test('maintenance schedule: a failed run is reported and the schedule goes on', async () => {
    const timers = [];
    const fakeTimers = { setTimeout: (fn) => { timers.push(fn); return 1; }, clearTimeout: () => {} };
    let calls = 0;
    const errors = [];
    const results = [];
    schedule(async () => {
        calls += 1;
        if (calls === 1) throw new Error('connect ECONNREFUSED');
        return { refreshed_minutes: 3 };
    }, 1000, { onResult: (r) => results.push(r), onError: (e) => errors.push(e.message), timers: fakeTimers });
    await tick();
    assert.deepEqual(errors, ['connect ECONNREFUSED']);
    assert.equal(timers.length, 1, 'retried at the next tick');
    timers[0]();
    await tick();
    assert.deepEqual(results, [{ refreshed_minutes: 3 }]);
});

test('maintenance: a run described for the status', () => {
    assert.equal(describeRun({ skipped: true }), 'another worker is running it');
    assert.equal(describeRun({ refreshed_minutes: 2, partitions_made: 0, partitions_dropped: [] }), '2 min rolled up');
    assert.equal(describeRun({ refreshed_minutes: 0, partitions_made: 3, partitions_dropped: ['measurements_20260101'] }),
        '0 min rolled up, 3 partitions made, 1 expired partitions dropped');
    assert.equal(describeRun({ refreshed_minutes: 1, partitions_made: 0, partitions_dropped: [], partitions_busy: true }),
        '1 min rolled up, partitions busy (a long query), next time');
    assert.equal(describeRun({ refreshed_minutes: 0, partitions_made: 0, partitions_dropped: [], rejects_deleted: 12 }),
        '0 min rolled up, 12 expired rejects deleted');
});

describe('octopus-maintenance in Node-RED', () => {
    before(() => new Promise((resolve) => helper.startServer(resolve)));
    after(() => new Promise((resolve) => helper.stopServer(resolve)));
    afterEach(() => helper.unload());

    it('calls run_maintenance with the retention settings and sends what it did', async () => {
        const flow = [
            { id: 'tab', type: 'tab', label: 'test' },
            { id: 'db', type: 'octopus-db', name: 'test db' },
            { id: 'm', type: 'octopus-maintenance', z: 'tab', db: 'db', intervalS: '1', rawDays: '7', rollupDays: '90', rejectDays: '2', wires: [['out']] },
            { id: 'out', type: 'helper', z: 'tab' },
        ];
        const queries = [];
        // The node takes its pool when it runs: swap it in before the first tick.
        const pool = { query: async (text, values) => { queries.push({ text, values }); return { rows: [{ result: { refreshed_minutes: 4, partitions_made: 0, partitions_dropped: [] } }] }; } };
        const received = new Promise((resolve, reject) => {
            helper.load([octopusDb, octopusMaintenance], flow, () => {
                helper.getNode('db').getPool = () => pool;
                helper.getNode('out').on('input', (msg) => {
                    try {
                        assert.deepEqual(msg.payload, { refreshed_minutes: 4, partitions_made: 0, partitions_dropped: [] });
                        resolve();
                    } catch (e) { reject(e); }
                });
            });
        });
        await received;
        assert.match(queries[queries.length - 1].text, /run_maintenance\(\$1::int, \$2::int, \$3::int\)/);
        assert.deepEqual(queries[queries.length - 1].values, [7, 90, 2]);
    });
});

const URL = process.env.OCTOPUS_TEST_PG;
if (!URL) {
    test('run_maintenance against a real PostgreSQL', {
        skip: 'OCTOPUS_TEST_PG is not set (a libpq URL of a running PostgreSQL): not tested against a real database',
    }, () => {});
} else describe('run_maintenance against a real PostgreSQL', () => {
    let db;
    before(async () => { db = await migratedSchema(URL, 'octopus_maint'); });
    after(async () => { if (db) await dropSchema(db); });

    const reading = (device, ts, value) => ({
        kind: 'reading', site: 'planta', room: 'sala', device, attribute: 'temperatura', ts, value, unit: null,
    });

    it('rolls up finished minutes, late readings included, and drops what is past retention', async () => {
        const old = new Date(Date.now() - 40 * 86400e3);
        old.setUTCHours(10, 0, 0, 0);
        const at = (sec) => new Date(old.getTime() + sec * 1000).toISOString();
        await writeItems(db.client, [reading('d1', at(1), 10), reading('d2', at(2), 30), reading('d1', at(61), 5)]);
        let result = await runMaintenance(db.client, { rawDays: 0, rollupDays: 0 });
        assert.equal(result.refreshed_minutes, 2);
        const rollup = async () => (await db.client.query(
            'SELECT minute, n, sum, min, max FROM measurements_minute ORDER BY attribute_id, minute')).rows
            .map((r) => [r.minute.toISOString(), r.n, r.sum, r.min, r.max]);
        assert.deepEqual(await rollup(), [[at(0), 1, 10, 10, 10], [at(60), 1, 5, 5, 5], [at(0), 1, 30, 30, 30]]);

        // a late reading into a minute already rolled up: that minute is recomputed
        await writeItems(db.client, [reading('d1', at(30), 20)]);
        result = await runMaintenance(db.client, { rawDays: 0, rollupDays: 0 });
        assert.equal(result.refreshed_minutes, 1);
        assert.deepEqual((await rollup())[0], [at(0), 2, 30, 10, 20]);

        // 30 days of raw readings: the 40-day-old day partition goes, the rollups stay
        result = await runMaintenance(db.client, { rawDays: 30, rollupDays: 0 });
        const day = old.toISOString().slice(0, 10).replace(/-/g, '');
        assert.deepEqual(result.partitions_dropped, [`measurements_${day}`]);
        assert.equal((await db.client.query('SELECT count(*)::int AS n FROM measurements')).rows[0].n, 0);
        assert.equal((await rollup()).length, 3);
    });

    it('deletes the rejects past their retention, oldest first, and keeps the rest', async () => {
        await db.client.query('DELETE FROM rejects');
        const days = [45, 31, 29, 0];
        for (const d of days) {
            await db.client.query(
                "INSERT INTO rejects (received_at, topic, reason, payload, payload_size) VALUES (now() - $1 * interval '1 day', $2, 'not a number', '\\x78', 1)",
                [d, `planta/sala/d${d}/temperatura`]);
        }
        const kept = async () => (await db.client.query('SELECT topic FROM rejects ORDER BY received_at')).rows.map((r) => r.topic);
        let result = await runMaintenance(db.client, { rawDays: 0, rollupDays: 0, rejectDays: 0 });
        assert.equal(result.rejects_deleted, 0, '0 keeps them for ever');
        assert.equal((await kept()).length, 4);
        result = await runMaintenance(db.client, { rawDays: 0, rollupDays: 0, rejectDays: 30 });
        assert.equal(result.rejects_deleted, 2);
        assert.deepEqual(await kept(), ['planta/sala/d29/temperatura', 'planta/sala/d0/temperatura']);
        // the two-argument form that tools and tests call keeps every reject
        const two = (await db.client.query('SELECT run_maintenance(1, 1) AS r')).rows[0].r;
        assert.equal(two.rejects_deleted, 0);
        assert.equal((await kept()).length, 2);
        // a backlog (the upkeep was down) goes over several runs, not in one long transaction
        await db.client.query(
            "INSERT INTO rejects (received_at, topic, reason, payload, payload_size) SELECT now() - interval '40 days', 'x', 'y', '\\x78', 1 FROM generate_series(1, 100005)");
        assert.equal((await runMaintenance(db.client, { rawDays: 0, rollupDays: 0, rejectDays: 30 })).rejects_deleted, 100000);
        assert.equal((await runMaintenance(db.client, { rawDays: 0, rollupDays: 0, rejectDays: 30 })).rejects_deleted, 5);
        assert.equal((await kept()).length, 2);
    });
});
