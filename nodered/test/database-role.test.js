'use strict';
// Every statement the nodes run, as Node-RED's own database role (postgres/migrations/010):
// OCTOPUS_TEST_PG (the owner) makes the schema and what the portal would have written,
// OCTOPUS_TEST_PG_NODERED (a login member of octopus_flows) runs the nodes' modules — the
// ingest's batch, receipts and clock slot, the upkeep with retention, Modbus' device list and
// figures, the alerts' reads and writes — and is refused the portal's tables.
const { describe, it, before, after, test } = require('node:test');
const assert = require('node:assert/strict');
const { Pool } = require('pg');
const { migratedSchema, dropSchema } = require('./helpers/database');
const store = require('../nodes/node-red-contrib-octopus/lib/store');
const { runMaintenance } = require('../nodes/node-red-contrib-octopus/lib/maintenance');
const modbus = require('../nodes/node-red-contrib-octopus/lib/modbus-devices');
const alerts = require('../nodes/node-red-contrib-octopus/lib/alerts-store');
const { WorkerLock } = require('../nodes/node-red-contrib-octopus/lib/worker-lock');

const OWNER_URL = process.env.OCTOPUS_TEST_PG;
const NODERED_URL = process.env.OCTOPUS_TEST_PG_NODERED;
const PERMISSION_DENIED = '42501';

if (!OWNER_URL || !NODERED_URL) {
    test("the nodes' statements as Node-RED's database role", {
        skip: 'OCTOPUS_TEST_PG and OCTOPUS_TEST_PG_NODERED are not both set (libpq URLs of the owner and of a member of octopus_flows)',
    }, () => {});
} else describe("the nodes' statements as Node-RED's database role", () => {
    let db;
    let pool;
    const owner = (text, values) => db.client.query(text, values);
    const nodered = (text, values) => pool.query(text, values);

    before(async () => {
        db = await migratedSchema(OWNER_URL, 'octopus_role');
        pool = new Pool({ connectionString: NODERED_URL, options: `-c search_path=${db.schema}`, max: 3 });
    });
    after(async () => {
        if (pool) await pool.end();
        if (db) await dropSchema(db);
    });

    it('connects as a role that is not the owner', async () => {
        const { rows } = await nodered("SELECT current_user AS me, pg_has_role(current_user, 'octopus_flows', 'USAGE') AS flows");
        const who = (await owner('SELECT current_user AS me')).rows[0].me;
        assert.notEqual(rows[0].me, who);
        assert.equal(rows[0].flows, true);
    });

    it('ingest: a batch with its receipt, the receipts read back, a clock slot claimed and released', async () => {
        const old = new Date(Date.now() - 40 * 86400e3).toISOString(); // its day partition is made on the way
        const reading = (ts, value) => ({
            kind: 'reading', site: 'planta', room: 'sala', device: 'd1', attribute: 'temperatura', ts, value, unit: '°C',
        });
        const items = [
            reading(old, 10), reading(new Date(Date.now() - 120e3).toISOString(), 20),
            { kind: 'status', site: 'planta', room: 'sala', device: 'd1', status: 'online', ts: old },
            { kind: 'reject', topic: 'a//b', reason: 'topic level 2 is empty', payload: Buffer.from('x'), size: 1 },
        ];
        const receipt = { worker: 'w1', batchSeq: 1, keepFrom: 1, packetIds: [1, 2, 3, 4], hashes: [11, 12, 13, 14] };
        assert.equal(await store.writeItems(pool, items, receipt), 2);
        assert.equal(await store.writeItems(pool, items.slice(0, 1)), 0, 'without a receipt too; a redelivery stores nothing');
        assert.deepEqual(await store.loadReceipts(pool, 'w1'), [{ batchSeq: 1, packetIds: [1, 2, 3, 4], hashes: [11, 12, 13, 14] }]);
        const slot = await store.claimClockSlot(pool, 'w1');
        assert.equal(await store.claimClockSlot(pool, 'w1'), slot);
        await store.releaseClockSlot(pool, 'w1');
        assert.equal((await owner('SELECT count(*)::int AS n FROM ingest_workers')).rows[0].n, 0);
        assert.equal((await owner('SELECT count(*)::int AS n FROM measurements')).rows[0].n, 2);
    });

    it('upkeep: rollups, partitions ahead, retention dropping a partition', async () => {
        const result = await runMaintenance(pool, { rawDays: 30, rollupDays: 0 });
        assert.equal(result.partitions_busy, false);
        assert.ok(result.refreshed_minutes >= 2, JSON.stringify(result));
        assert.equal(result.partitions_dropped.length, 1, JSON.stringify(result));
        assert.match(result.partitions_dropped[0], /^measurements_\d{8}$/);
        assert.equal((await owner('SELECT count(*)::int AS n FROM measurements')).rows[0].n, 1);
        assert.equal((await owner('SELECT count(*)::int AS n FROM measurements_minute')).rows[0].n, 2);
    });

    it('Modbus: the device list read, the figures written and rewritten, under the worker lock', async () => {
        await owner("INSERT INTO modbus_devices (site, room, name, host, port, profile) VALUES ('planta', 'sala', 'r1', '127.0.0.1', 5020, 'osm27')");
        const lock = new WorkerLock({ getPool: () => pool, key: modbus.LOCK_KEY });
        assert.equal(await lock.acquire(), 'held');
        const devices = await modbus.loadDevices(lock); // as the fleet does: on the lock's connection
        assert.equal(devices.length, 1);
        const row = {
            device_id: devices[0].id, since: new Date(), status: 'online', polls: 1, ok: 1, timeouts: 0, exceptions: 0,
            connection_errors: 0, garbage: 0, overflows: 0, consecutive_failures: 0, last_ok_at: new Date(),
            last_error: null, last_error_at: null, late_ms_max: 3,
        };
        await modbus.writeStats(lock, 'w1', [row]);
        await modbus.writeStats(pool, 'w1', [{ ...row, polls: 2, ok: 2 }]);
        assert.equal((await owner('SELECT polls::int FROM modbus_poll_stats')).rows[0].polls, 2);
        await lock.release();
    });

    it('alerts: rules, channels, starting point and open alerts read; raised, evented, cleared; an outage recorded', async () => {
        const ruleId = (await owner("INSERT INTO alert_rules (name, kind, devices, attribute, condition, high, severity) VALUES ('hot', 'threshold', '#', 'temperatura', 'above', 30, 'warning') RETURNING id")).rows[0].id;
        await owner("INSERT INTO notification_channels (name, kind, target, severities) VALUES ('ops', 'mqtt', 'ops/alerts', '{warning}')");
        assert.equal((await alerts.loadRules(nodered)).length, 1);
        assert.equal((await alerts.loadChannels(nodered)).length, 1);
        const start = await alerts.loadStartingPoint(nodered);
        assert.equal(start.attributes.length, 1);
        assert.equal(start.statuses.length, 1);
        const raised = await alerts.raiseAlert(nodered, {
            rule_id: ruleId, rule_name: 'hot', site: 'planta', room: 'sala', device: 'd1', attribute: 'temperatura',
            severity: 'warning', message: 'hot', raised_value: '31', flapping: false, flapping_detail: null,
        });
        assert.equal(raised.raised, true);
        assert.equal((await alerts.loadOpenAlerts(nodered)).length, 1);
        await alerts.addEvents(nodered, raised.alert.id, [{ kind: 'notified', actor: 'ops', detail: null }]);
        assert.equal((await alerts.clearAlert(nodered, raised.alert.id, '20', null)).cleared_value, '20');
        const at = new Date();
        const outage = await alerts.recordOutage(nodered, {
            rule_name: 'database unreachable', site: 'octopus', room: 'platform', device: 'database', attribute: 'status',
            severity: 'critical', message: 'down', raised_at: at, raised_value: null, cleared_at: at, cleared_value: null,
        }, [{ at, kind: 'raised' }, { at, kind: 'cleared' }]);
        assert.ok(outage.id);
        assert.equal((await owner('SELECT count(*)::int AS n FROM alert_events')).rows[0].n, 5);
    });

    it('is refused the portal\'s tables, direct writes to the data, and the partition functions', async () => {
        const refused = [
            'SELECT * FROM users', 'SELECT * FROM api_keys', 'SELECT * FROM rejects', 'SELECT * FROM measurements',
            "INSERT INTO measurements (attribute_id, ts, num) VALUES (1, now(), 1)",
            'DELETE FROM measurements', 'UPDATE attributes SET unit = NULL', 'DELETE FROM devices',
            "UPDATE alerts SET acked_at = now(), acked_by = 'nodered'", 'DELETE FROM alerts',
            "UPDATE alert_rules SET enabled = false", "UPDATE modbus_devices SET enabled = false",
            "SELECT drop_partitions_before('measurements', 'day', now())",
            "SELECT ensure_partition('measurements', 'day', now())", 'SELECT refresh_rollups()',
            'CREATE TABLE mine (x int)',
        ];
        for (const sql of refused) {
            // eslint-disable-next-line no-await-in-loop
            const error = await nodered(sql).then(() => null, (e) => e);
            assert.ok(error, `allowed: ${sql}`);
            assert.equal(error.code, PERMISSION_DENIED, `${sql}: ${error.message}`);
        }
    });
});
