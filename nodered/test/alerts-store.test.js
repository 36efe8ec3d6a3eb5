'use strict';
// Alerts against a real PostgreSQL (OCTOPUS_TEST_PG, see store.test.js), in a throwaway
// schema made from postgres/migrations: the raise and clear statements (one open alert per
// rule and attribute, whatever happens), then the whole service (lib/alerts-service.js):
// rules read while it runs, the state rebuilt from the open alerts after a restart, stale
// rules started from the last readings, one evaluating worker and the others standing by,
// and the lock connection terminated with the database out of reach: "database unreachable".
const { describe, it, before, after, test } = require('node:test');
const assert = require('node:assert/strict');
const { Pool } = require('pg');
const { migratedSchema, dropSchema } = require('./helpers/database');
const {
    raiseAlert, clearAlert, addEvents, RAISE_SQL, CLEAR_SQL, EVENTS_SQL, OUTAGE_SQL,
} = require('../nodes/node-red-contrib-octopus/lib/alerts-store');
const { AlertService } = require('../nodes/node-red-contrib-octopus/lib/alerts-service');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(check, ms, what) {
    const end = Date.now() + ms;
    // eslint-disable-next-line no-await-in-loop
    while (!(await check())) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await sleep(10); // eslint-disable-line no-await-in-loop
    }
}

test('alerts store: statements with parameters only', () => {
    for (const sql of [RAISE_SQL, CLEAR_SQL, EVENTS_SQL, OUTAGE_SQL]) assert.doesNotMatch(sql, /'\$|\$\{|oficina/);
    assert.match(RAISE_SQL, /ON CONFLICT \(rule_id, site, room, device, attribute\) WHERE cleared_at IS NULL DO NOTHING/);
    assert.match(CLEAR_SQL, /WHERE id = \$1 AND cleared_at IS NULL/);
});

const URL = process.env.OCTOPUS_TEST_PG;
if (!URL) {
    test('alerts against a real PostgreSQL', {
        skip: 'OCTOPUS_TEST_PG is not set (a libpq URL of a running PostgreSQL): not tested against a real database',
    }, () => {});
} else describe('alerts against a real PostgreSQL', () => {
    let db;
    let pool;
    const lockKey = 7242004000 + (process.pid % 1000); // this run's own lock
    const services = [];
    const q = (text, values) => db.client.query(text, values);

    before(async () => {
        db = await migratedSchema(URL, 'octopus_alerts');
        pool = new Pool({ connectionString: URL, options: `-c search_path=${db.schema}`, max: 4 });
    });
    after(async () => {
        await Promise.all(services.map((s) => s.stop()));
        if (pool) await pool.end();
        if (db) await dropSchema(db);
    });

    const alert = (fields = {}) => ({
        rule_id: null, rule_name: 'hot', site: 'oficina', room: 'servidores', device: 'servidor1', attribute: 'temperatura',
        severity: 'warning', message: "it's hot", raised_value: '31', flapping: false, flapping_detail: null, ...fields,
    });
    async function rule(fields = {}) {
        const f = {
            name: 'hot', kind: 'threshold', devices: '#', attribute: 'temperatura', condition: 'above', high: 30, severity: 'warning', ...fields,
        };
        const cols = Object.keys(f);
        const { rows } = await q(`INSERT INTO alert_rules (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING id`,
            Object.values(f));
        return rows[0].id;
    }
    const events = async (id) => (await q('SELECT kind, value, actor, detail FROM alert_events WHERE alert_id = $1 ORDER BY id', [id])).rows;
    const openAlerts = async () => (await q('SELECT * FROM alerts WHERE cleared_at IS NULL ORDER BY id')).rows;

    it('raises an alert once per rule and attribute while it is open, and clears it', async () => {
        const ruleId = await rule();
        const query = (text, values) => q(text, values);
        const first = await raiseAlert(query, alert({ rule_id: ruleId }));
        assert.equal(first.raised, true);
        assert.equal(first.alert.message, "it's hot");
        assert.deepEqual(await events(first.alert.id), [{ kind: 'raised', value: '31', actor: null, detail: null }]);

        const again = await raiseAlert(query, alert({ rule_id: ruleId, raised_value: '35', flapping: true, flapping_detail: 'x' }));
        assert.deepEqual([again.raised, again.alert.id, again.alert.raised_value], [false, first.alert.id, '31'], 'the open one, untouched');
        assert.equal((await openAlerts()).length, 1);
        assert.equal((await events(first.alert.id)).length, 1, 'no event for a raise that was not one');

        const other = await raiseAlert(query, alert({ rule_id: ruleId, device: 'servidor2', flapping: true, flapping_detail: 'raised 4 times' }));
        assert.equal(other.raised, true);
        assert.equal(other.alert.flapping, true);
        assert.deepEqual((await events(other.alert.id)).map((e) => [e.kind, e.detail]), [['raised', null], ['flapping', 'raised 4 times']]);

        await addEvents(query, first.alert.id, [
            { kind: 'notified', actor: 'ops mail', detail: 'email, raised' }, { kind: 'suppressed', actor: 'pager', detail: 'raised: rate limit' },
        ]);
        const cleared = await clearAlert(query, first.alert.id, '27', null);
        assert.equal(cleared.cleared_value, '27');
        assert.ok(cleared.cleared_at instanceof Date);
        assert.equal(await clearAlert(query, first.alert.id, '26', null), null, 'cleared once');
        assert.deepEqual((await events(first.alert.id)).map((e) => [e.kind, e.value, e.actor]), [
            ['raised', '31', null], ['notified', null, 'ops mail'], ['suppressed', null, 'pager'], ['cleared', '27', null],
        ]);
        const next = await raiseAlert(query, alert({ rule_id: ruleId }));
        assert.equal(next.raised, true, 'once cleared, the next raise is a new alert');
        assert.notEqual(next.alert.id, first.alert.id);
        await q('DELETE FROM alerts');
        await q('DELETE FROM alert_rules');
    });

    function service(name, extra = {}) {
        const sent = [[], [], []];
        const seen = [];
        const s = new AlertService({
            getPool: () => pool,
            settings: {
                refreshMs: 100, notifyMinIntervalMs: 300e3, flapCount: 4, flapWindowMs: 600e3, emailFrom: 'octopus@localhost', portalUrl: '', ...extra,
            },
            publish: (output, msg) => sent[output].push(msg),
            onEvent: (e) => seen.push(e),
            lockKey,
        });
        Object.assign(s, { name, sent, seen });
        services.push(s);
        s.start();
        return s;
    }
    const live = (value, device = 'servidor1', attribute = 'temperatura') => ({
        readings: [{ site: 'oficina', room: 'servidores', device, attribute, ts: new Date().toISOString(), value, unit: '°C' }],
        statuses: [],
    });
    async function stopService(s) {
        await s.stop();
        services.splice(services.indexOf(s), 1);
    }

    it('evaluates on one worker, the other standing by; writes, publishes and notifies', async () => {
        const ruleId = await rule({ message: '{device}: {value}{unit}' });
        await q("INSERT INTO notification_channels (name, kind, target, severities) VALUES ('ops', 'email', 'ops@example.com', '{warning}')");
        const a = service('a');
        await until(() => a.state === 'evaluating', 3000, 'the first worker to evaluate');
        const b = service('b');
        await until(() => b.state === 'standby', 3000, 'the second worker to stand by');
        assert.deepEqual(a.summary(), { state: 'evaluating', rules: 1, active: 0, databaseAlert: false });

        assert.equal(b.input(JSON.stringify(live(40))), true, 'a standby worker drops input unread');
        assert.equal(a.input(JSON.stringify(live(40))), true);
        await until(async () => (await openAlerts()).length === 1, 2000, 'the alert');
        await until(() => a.sent[1].length === 1, 2000, 'the e-mail');
        const [open] = await openAlerts();
        assert.deepEqual([open.rule_id, open.message, open.raised_value], [ruleId, 'servidor1: 40°C', '40']);
        const state = JSON.parse(a.sent[0][0].payload);
        assert.deepEqual([a.sent[0][0].topic, state.id, state.state], [`octopus/alerts/${ruleId}/oficina/servidores/servidor1/temperatura`, Number(open.id), 'active']);
        assert.equal(a.sent[1][0].to, 'ops@example.com');
        await until(async () => (await events(open.id)).length === 2, 2000, 'the notified event');
        assert.deepEqual((await events(open.id)).map((e) => [e.kind, e.actor]), [['raised', null], ['notified', 'ops']]);
        assert.equal(b.sent.flat().length, 0, 'the standby worker did nothing');
        assert.equal(a.input('not json'), false);

        // the worker stops (a redeploy): the other takes over from the open alert
        await stopService(a);
        await until(() => b.state === 'evaluating', 3000, 'the second worker to take over');
        assert.equal(b.summary().active, 1, 'the open alert is active again');
        b.input(live(41));
        await sleep(200);
        assert.equal((await q('SELECT count(*)::int AS n FROM alerts')).rows[0].n, 1, 'not raised twice');
        b.input(live(29));
        await until(async () => (await events(open.id)).length === 4, 2000, 'the clear and its notification');
        assert.deepEqual((await events(open.id)).map((e) => e.kind), ['raised', 'notified', 'cleared', 'notified'],
            'the worker that took over tells of the clear (of an alert from before it, the rate limit decides)');
        assert.match(b.sent[1][0].topic, /^\[Octopus warning\] cleared: servidor1: 40°C$/);
    });

    it('follows the rules as they change: a new one starts, a changed one keeps its alert, a deleted one clears it', async () => {
        const [b] = services;
        const ruleId = await rule({ name: 'cold', condition: 'below', high: null, low: 10 });
        await until(() => b.summary().rules === 2, 2000, 'the new rule');
        b.input(live(5, 'servidor2'));
        await until(async () => (await openAlerts()).length === 1, 2000, 'the alert');
        await q('UPDATE alert_rules SET low = 8, hysteresis = 1, updated_at = now() WHERE id = $1', [ruleId]);
        await sleep(300);
        b.input(live(8.5, 'servidor2')); // in the new deadband
        await sleep(200);
        assert.equal((await openAlerts()).length, 1, 'still open');
        b.input(live(9.5, 'servidor2'));
        await until(async () => (await openAlerts()).length === 0, 2000, 'the new rule to clear it');

        b.input(live(5, 'servidor2'));
        await until(async () => (await openAlerts()).length === 1, 2000, 'another alert');
        const [open] = await openAlerts();
        await q('DELETE FROM alert_rules WHERE id = $1', [ruleId]);
        await until(async () => (await openAlerts()).length === 0, 2000, 'the deleted rule\'s alert to clear');
        const [cleared] = (await q('SELECT * FROM alerts WHERE id = $1', [open.id])).rows;
        assert.equal(cleared.rule_id, null, 'ON DELETE SET NULL');
        assert.equal((await events(open.id)).at(-1).detail, 'rule removed');
        const state = JSON.parse(b.sent[0].at(-1).payload);
        assert.deepEqual([b.sent[0].at(-1).topic.split('/')[2], state.state, state.rule_id], [String(ruleId), 'cleared', null]);
        await q('UPDATE alert_rules SET enabled = false');
        await until(() => b.summary().rules === 0, 2000, 'the rules to go');
    });

    it('starts stale and offline rules from the last readings and statuses', async () => {
        const [b] = services;
        await q(`INSERT INTO devices (site, room, name, status, status_at) VALUES
            ('planta', 'nave', 'plc1', 'offline', now() - interval '1 hour'),
            ('planta', 'nave', 'plc2', 'online', now())`);
        await q(`INSERT INTO attributes (device_id, name, unit, last_seen, last_ts, last_num)
            SELECT id, 'presion', 'bar', now() - interval '10 minutes', now() - interval '10 minutes', 2.5 FROM devices WHERE name = 'plc1'
            UNION ALL SELECT id, 'presion', 'bar', now(), now(), 3 FROM devices WHERE name = 'plc2'`);
        const stale = await rule({ name: 'quiet', kind: 'stale', devices: 'planta/#', attribute: 'presion', condition: null, high: null, stale_after_s: 60 });
        const offline = await rule({ name: 'gone', kind: 'offline', devices: 'planta/+/+', attribute: null, condition: null, high: null });
        await until(async () => (await openAlerts()).length === 2, 3000, 'the stale and offline alerts');
        const open = await openAlerts();
        assert.deepEqual(open.map((a) => [a.rule_id, a.device, a.attribute, a.raised_value]).sort(),
            [[stale, 'plc1', 'presion', '2.5'], [offline, 'plc1', 'status', 'offline']].sort());
        // as the ingest does it: stored first, then on octopus/live
        await q("UPDATE devices SET status = 'online', status_at = now() WHERE name = 'plc1'");
        b.input({ readings: [], statuses: [{ site: 'planta', room: 'nave', device: 'plc1', status: 'online', ts: new Date().toISOString() }] });
        await until(async () => (await openAlerts()).length === 1, 2000, 'the offline alert to clear');
        // a status stored, its octopus/live message lost: caught up with at the next refresh
        await q("UPDATE devices SET status = 'offline', status_at = now() WHERE name = 'plc2'");
        await until(async () => (await openAlerts()).length === 2, 2000, 'the offline alert of plc2');
        await q("UPDATE devices SET status = 'online', status_at = now() WHERE name = 'plc2'");
        await until(async () => (await openAlerts()).length === 1, 2000, 'the offline alert of plc2 to clear');
        await q('UPDATE alert_rules SET enabled = false');
        await until(async () => (await openAlerts()).length === 0, 2000, 'the disabled rule\'s alert to clear');
        assert.equal((await q("SELECT count(*)::int AS n FROM alert_events WHERE detail = 'rule disabled'")).rows[0].n, 1);
    });

    it('the lock connection killed: evaluation stops at once, and starts again from the database', async () => {
        const [b] = services;
        await rule({ name: 'hot again' });
        await until(() => b.summary().rules === 1, 2000, 'the rule');
        b.input(live(50));
        await until(async () => (await openAlerts()).length === 1, 2000, 'the alert');
        await q(`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'
            AND ((classid::bigint << 32) | objid::bigint) = $1`, [lockKey]);
        await until(() => b.seen.some((e) => e.type === 'lock-lost'), 3000, 'the lock to be lost');
        await until(() => b.state === 'evaluating', 3000, 'evaluation to start again');
        assert.equal(b.summary().active, 1);
        b.input(live(20));
        await until(async () => (await openAlerts()).length === 0, 2000, 'the clear');
        assert.equal((await q('SELECT count(*)::int AS n FROM alerts WHERE rule_name = $1', ['hot again'])).rows[0].n, 1);
    });

    it('the lock connection terminated and PostgreSQL refused: "database unreachable" without it, recorded once back', async () => {
        await q("INSERT INTO notification_channels (name, kind, target, severities) VALUES ('pager', 'webhook', 'https://hooks.example.com/x', '{critical}')");
        // a worker of its own lock, whose connections go nowhere while `down` (a refused port: a real refusal)
        const key = lockKey + 1;
        const nowhere = new Pool({ host: '127.0.0.1', port: 1, connectionTimeoutMillis: 1000 });
        let down = false;
        const sent = [[], [], []];
        const s = new AlertService({
            getPool: () => (down ? nowhere : pool),
            settings: {
                refreshMs: 50, dbDownAfterMs: 300, notifyMinIntervalMs: 300e3, flapCount: 4, flapWindowMs: 600e3, emailFrom: 'octopus@localhost', portalUrl: '',
            },
            publish: (output, msg) => sent[output].push(msg),
            lockKey: key,
        });
        const states = () => sent[0].filter((m) => m.retain).map((m) => JSON.parse(m.payload));
        try {
            s.start();
            await until(() => s.state === 'evaluating', 3000, 'the worker to evaluate');
            down = true;
            const t0 = Date.now();
            await q(`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'
                AND ((classid::bigint << 32) | objid::bigint) = $1`, [key]);
            await until(() => states().length === 1, 3000, 'the database alert');
            assert.ok(Date.now() - t0 >= 300, 'not before ALERT_DB_DOWN_AFTER_S');
            const [raised] = states();
            assert.deepEqual([raised.id, raised.rule_name, raised.state, raised.severity], [null, 'database unreachable', 'active', 'critical']);
            assert.match(raised.message, /^PostgreSQL unreachable since \S+: /);
            assert.deepEqual(sent[2].map((m) => [m.url, m.payload.event]), [['https://hooks.example.com/x', 'raised']]);

            down = false;
            await until(() => states().length === 2, 3000, 'the clear');
            const cleared = states()[1];
            assert.equal(cleared.state, 'cleared');
            const [row] = (await q('SELECT * FROM alerts WHERE id = $1', [cleared.id])).rows;
            assert.deepEqual([row.rule_id, row.rule_name, row.site, row.device, row.attribute, row.acked_at],
                [null, 'database unreachable', 'octopus', 'database', 'reachable', null], 'an ordinary alert: in the history, needing attention');
            assert.equal(row.raised_at.toISOString(), raised.raised_at);
            assert.ok(row.cleared_at > row.raised_at);
            assert.deepEqual((await events(row.id)).map((e) => [e.kind, e.actor]),
                [['raised', null], ['notified', 'pager'], ['cleared', null], ['notified', 'pager']]);
            assert.deepEqual(sent[2].map((m) => [m.payload.event, m.payload.id]), [['raised', null], ['cleared', Number(row.id)]]);
            await until(() => s.state === 'evaluating', 3000, 'evaluation again');
        } finally {
            await s.stop();
            await nowhere.end();
            await q('DELETE FROM notification_channels WHERE name = $1', ['pager']);
        }
    });

    it('closes: the lock is given back', async () => {
        await Promise.all(services.map((s) => s.stop()));
        services.length = 0;
        const locks = await q("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND ((classid::bigint << 32) | objid::bigint) = $1", [lockKey]);
        assert.equal(locks.rows[0].n, 0);
    });
});
