'use strict';
// The store against a real PostgreSQL: set OCTOPUS_TEST_PG to a libpq connection URL
// (postgresql://user:password@host:port/db) of a server that is already running; this test
// starts nothing. It works in a schema of its own, made from postgres/migrations/*.sql and
// dropped afterwards.
const { describe, it, before, after, test } = require('node:test');
const crypto = require('crypto');
const assert = require('node:assert/strict');
const { migratedSchema, dropSchema } = require('./helpers/database');
const {
    writeItems, loadReceipts, claimClockSlot, releaseClockSlot, isDataError,
} = require('../nodes/node-red-contrib-octopus/lib/store');
const { IngestCore } = require('../nodes/node-red-contrib-octopus/lib/ingest-core');

const URL = process.env.OCTOPUS_TEST_PG;

if (!URL) {
    test('store against a real PostgreSQL', {
        skip: 'OCTOPUS_TEST_PG is not set (a libpq URL of a running PostgreSQL): not tested against a real database',
    }, () => {});
} else describe('store against a real PostgreSQL', () => {
    let db;
    let client;

    before(async () => {
        db = await migratedSchema(URL, 'octopus_test');
        client = db.client;
    });
    after(async () => {
        if (db) await dropSchema(db);
    });

    const TS = '2026-11-22T12:00:00.123456Z';
    const items = [
        { kind: 'reading', site: 'oficina', room: 'servidores', device: 'servidor1', attribute: 'temperatura', ts: TS, value: 23.5, unit: '°C' },
        { kind: 'reading', site: 'oficina', room: 'servidores', device: 'servidor1', attribute: 'puerta', ts: TS, value: 'open', unit: null },
        { kind: 'reading', site: 'oficina', room: 'servidores', device: 'servidor1', attribute: 'alarma', ts: TS, value: true, unit: null },
        { kind: 'status', site: 'oficina', room: 'servidores', device: 'servidor1', status: 'online', ts: TS },
        { kind: 'reject', topic: "a//c/d'; DROP TABLE rejects; --", reason: 'topic level 2 is empty', payload: Buffer.from([0x00, 0xff, 0x27, 0x5c]), size: 70000 },
    ];

    it('writes readings, statuses and rejects in one call', async () => {
        assert.equal(await writeItems(client, items), 3);
        const m = await client.query(`SELECT a.name, m.ts, m.num, m.txt, a.unit FROM measurements m
            JOIN attributes a ON a.id = m.attribute_id ORDER BY a.name`);
        assert.deepEqual(m.rows.map((r) => [r.name, r.num, r.txt, r.unit]), [
            ['alarma', 1, 'true', null], ['puerta', null, 'open', null], ['temperatura', 23.5, null, '°C'],
        ]);
        const us = await client.query(`SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS t FROM measurements LIMIT 1`);
        assert.equal(us.rows[0].t, '2026-11-22T12:00:00.123456', 'microseconds kept');
        const d = await client.query('SELECT site, room, name, status FROM devices');
        assert.deepEqual(d.rows, [{ site: 'oficina', room: 'servidores', name: 'servidor1', status: 'online' }]);
        const r = await client.query('SELECT topic, reason, payload, payload_size FROM rejects');
        assert.deepEqual(r.rows, [{ topic: "a//c/d'; DROP TABLE rejects; --", reason: 'topic level 2 is empty', payload: Buffer.from([0x00, 0xff, 0x27, 0x5c]), payload_size: 70000 }]);
    });

    it('a redelivered batch inserts no measurement twice', async () => {
        assert.equal(await writeItems(client, items.slice(0, 3)), 0);
        const n = await client.query('SELECT count(*)::int AS n FROM measurements');
        assert.equal(n.rows[0].n, 3);
    });

    it('a batch mixing a redelivery with new readings stores the new ones, once each', async () => {
        // the plain insert meets a stored row; the batch is inserted again, skipping it
        const fresh = { ...items[0], ts: '2026-11-22T12:00:01Z', value: 24 };
        assert.equal(await writeItems(client, [items[0], fresh, items[1]]), 1);
        const n = await client.query('SELECT count(*)::int AS n FROM measurements');
        assert.equal(n.rows[0].n, 4);
        const last = await client.query("SELECT last_num FROM attributes WHERE name = 'temperatura'");
        assert.equal(last.rows[0].last_num, 24);
    });

    it('a reading pointing outside the batch\'s attributes is refused as a data error, nothing stored', async () => {
        const before = await client.query('SELECT count(*)::int AS n FROM measurements');
        const error = await client.query(
            "SELECT ingest_keyed_batch('{s}', '{r}', '{d}', '{a}', '{NULL}', '{2026-11-22T12:00:00Z}', '{1}', '{NULL}', " +
            "'{1,2}', '{2026-11-22T12:00:00Z,2026-11-22T12:00:01Z}', '{1,2}', '{NULL,NULL}', " +
            "'{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}')").then(() => null, (e) => e);
        assert.ok(error, 'key 2 names no attribute of the batch');
        assert.equal(isDataError(error), true, `${error.code} ${error.message}`);
        const after = await client.query('SELECT count(*)::int AS n FROM measurements');
        assert.equal(after.rows[0].n, before.rows[0].n);
    });

    it('ingest_batch, one row per reading (for tools and SQL), numbers the attributes itself', async () => {
        const sql = 'SELECT ingest_batch($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], ' +
            "$6::float8[], $7::text[], $8::text[], '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}') AS n";
        const rows = [ // device, attribute, ts, num, unit: out of order, attributes interleaved
            ['d2', 'hum', '2026-11-22T10:00:03Z', 41, '%'],
            ['d1', 'temp', '2026-11-22T10:00:02Z', 21, 'C'],
            ['d2', 'hum', '2026-11-22T10:00:01Z', 40, null],
            ['d1', 'temp', '2026-11-22T10:00:04Z', 22, 'C'],
            ['d1', 'hum', '2026-11-22T10:00:05Z', 50, '%'],
        ];
        const col = (i) => rows.map((r) => r[i]);
        const params = [rows.map(() => 'rows'), rows.map(() => 'r'), col(0), col(1), col(2), col(3), rows.map(() => null), col(4)];
        assert.equal((await client.query(sql, params)).rows[0].n, 5);
        assert.equal((await client.query(sql, params)).rows[0].n, 0, 'a second call stores nothing twice');
        const stored = await client.query(`SELECT d.name AS device, a.name AS attribute, m.num FROM measurements m
            JOIN attributes a ON a.id = m.attribute_id JOIN devices d ON d.id = a.device_id
            WHERE d.site = 'rows' ORDER BY m.ts`);
        assert.deepEqual(stored.rows.map((r) => [r.device, r.attribute, r.num]), [
            ['d2', 'hum', 40], ['d1', 'temp', 21], ['d2', 'hum', 41], ['d1', 'temp', 22], ['d1', 'hum', 50],
        ]);
        const last = await client.query(`SELECT d.name AS device, a.name AS attribute, a.last_num, a.unit FROM attributes a
            JOIN devices d ON d.id = a.device_id WHERE d.site = 'rows' ORDER BY 1, 2`);
        assert.deepEqual(last.rows.map((r) => [r.device, r.attribute, r.last_num, r.unit]), [
            ['d1', 'hum', 50, '%'], ['d1', 'temp', 22, 'C'], ['d2', 'hum', 41, '%'],
        ]);
    });

    it('text that array syntax gives a meaning to is stored as sent', async () => {
        // the batch travels as array literals (pg-array.js): quotes, backslashes, commas,
        // braces, an empty string and the word NULL must all come back as the device sent them
        const odd = ['say "hi"', 'C:\\dir\\', '{x,y}', '', 'NULL', 'sp ace'];
        const batch = odd.map((txt, i) => ({
            kind: 'reading', site: 'odd', room: 'r{1}', device: 'd"\\,', attribute: `a${i}`,
            ts: '2026-11-22T14:00:00Z', value: txt, unit: i === 0 ? '"u"' : null,
        }));
        assert.equal(await writeItems(client, batch), odd.length);
        const stored = await client.query(`SELECT d.room, d.name AS device, a.name AS attribute, a.unit, m.txt
            FROM measurements m JOIN attributes a ON a.id = m.attribute_id JOIN devices d ON d.id = a.device_id
            WHERE d.site = 'odd' ORDER BY a.name`);
        assert.deepEqual(stored.rows.map((r) => r.txt), odd);
        assert.deepEqual([...new Set(stored.rows.map((r) => `${r.room}|${r.device}`))], ['r{1}|d"\\,']);
        assert.equal(stored.rows[0].unit, '"u"');
    });

    it('an empty batch is fine', async () => {
        assert.equal(await writeItems(client, []), 0);
    });

    it('an error caused by the data is told apart from a connection problem', async () => {
        // random, so that PostgreSQL cannot compress it below its ~2.7 kB index-row limit
        const long = { ...items[0], device: crypto.randomBytes(1500).toString('hex') };
        const error = await writeItems(client, [long]).then(() => null, (e) => e);
        assert.ok(error, 'PostgreSQL refused an index row that large');
        assert.equal(isDataError(error), true, `${error.code} ${error.message}`);
        assert.equal(isDataError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), false);
        assert.equal(isDataError(Object.assign(new Error('x'), { code: '57P01' })), false); // admin shutdown
    });

    it('the whole pipeline: MQTT-like messages in, rows out', async () => {
        const committed = [];
        const core = new IngestCore({
            write: (batch) => writeItems(client, batch), batchSize: 100, lingerMs: 10,
            onCommitted: (batch, inserted) => committed.push({ batch, inserted }),
        });
        core.receive('planta/linea1/motor2/rpm', Buffer.from('1500'));
        core.receive('planta/linea1/motor2/rpm', Buffer.from('1501')); // same millisecond: both kept
        core.receive('planta/linea1/motor2/estado', Buffer.from('{"value":"running","ts":"2026-11-22T11:00:00Z"}'));
        core.receive('planta/linea1/motor2/status', Buffer.from('offline'));
        core.receive('planta/linea1/motor2', Buffer.from('1'));
        core.receive('planta/linea1/motor2/rpm/set', Buffer.from('0'));
        assert.equal(await core.close(5000), 0);
        assert.equal(committed.reduce((n, c) => n + c.inserted, 0), 3);
        const rpm = await client.query(`SELECT count(*)::int AS n FROM measurements m JOIN attributes a ON a.id = m.attribute_id
            JOIN devices d ON d.id = a.device_id WHERE d.name = 'motor2' AND a.name = 'rpm'`);
        assert.equal(rpm.rows[0].n, 2);
        const last = await client.query("SELECT last_num FROM attributes WHERE name = 'rpm'");
        assert.equal(last.rows[0].last_num, 1501);
        const dev = await client.query("SELECT status FROM devices WHERE name = 'motor2'");
        assert.equal(dev.rows[0].status, 'offline');
        const rej = await client.query("SELECT reason FROM rejects WHERE topic = 'planta/linea1/motor2'");
        assert.deepEqual(rej.rows, [{ reason: 'topic has 3 levels, expected <site>/<room>/<device>/<attribute>' }]);
        assert.deepEqual(core.stats().ignored, 1);
    });

    it('a batch with its receipt: both in one transaction, older receipts pruned in it', async () => {
        const reading = (v) => ({ ...items[0], attribute: 'receipt', ts: `2026-11-22T13:00:0${v}Z`, value: v });
        const receipt = (batchSeq, keepFrom, packetIds) => ({
            worker: 'w1-ingest', batchSeq, keepFrom, packetIds, hashes: packetIds.map((p) => 2 ** 52 + p),
        });
        assert.equal(await writeItems(client, [reading(1)], receipt(1, 1, [101])), 1);
        assert.equal(await writeItems(client, [reading(2)], receipt(2, 1, [102, 103])), 1);
        assert.equal(await writeItems(client, [], receipt(3, 1, [])), 0, 'nothing to remember: no row');
        assert.deepEqual(await loadReceipts(client, 'w1-ingest'), [
            { batchSeq: 1, packetIds: [101], hashes: [2 ** 52 + 101] },
            { batchSeq: 2, packetIds: [102, 103], hashes: [2 ** 52 + 102, 2 ** 52 + 103] },
        ]);
        assert.deepEqual(await loadReceipts(client, 'another-ingest'), []);
        // the broker confirmed batch 1: the next batch's transaction removes its receipt
        await writeItems(client, [reading(4)], receipt(4, 2, [104]));
        assert.deepEqual((await loadReceipts(client, 'w1-ingest')).map((r) => r.batchSeq), [2, 4]);
        // a batch that fails leaves no receipt and prunes nothing
        const long = { ...items[0], device: crypto.randomBytes(1500).toString('hex') };
        await assert.rejects(writeItems(client, [long], receipt(5, 5, [105])));
        assert.deepEqual((await loadReceipts(client, 'w1-ingest')).map((r) => r.batchSeq), [2, 4]);
    });

    it('each worker claims an arrival-clock slot of its own and keeps it; a retired one frees it', async () => {
        const slots = await Promise.all(['a-ingest', 'b-ingest', 'c-ingest'].map((w) => claimClockSlot(client, w)));
        assert.deepEqual([...slots].sort(), [0, 1, 2], 'distinct, even when claimed at once');
        assert.equal(await claimClockSlot(client, 'b-ingest'), slots[1], 'kept across restarts');
        await releaseClockSlot(client, 'a-ingest');
        assert.equal(await claimClockSlot(client, 'd-ingest'), slots[0], 'the lowest free one');
        for (let i = 0; i < 7; i += 1) await claimClockSlot(client, `e${i}-ingest`); // eslint-disable-line no-await-in-loop
        await assert.rejects(claimClockSlot(client, 'too-many-ingest'), /all 10 ingest clock slots are taken/);
    });
});

