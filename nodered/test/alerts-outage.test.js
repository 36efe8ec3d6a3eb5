'use strict';
// The database watched without the database (lib/alerts-outage.js, wired in
// lib/alerts-service.js), on a fake clock and a fake PostgreSQL whose connections can be
// killed, refused or left hanging: the grace period, who raises, what is sent while the
// database is down, what is stored once it answers. Against a real PostgreSQL (the lock
// connection terminated): alerts-store.test.js.
const test = require('node:test');
const assert = require('node:assert/strict');
const { EventEmitter } = require('node:events');
const { DatabaseWatch, DATABASE_ALERT_TOPIC } = require('../nodes/node-red-contrib-octopus/lib/alerts-outage');
const { AlertService } = require('../nodes/node-red-contrib-octopus/lib/alerts-service');
const { alertState, emailBody } = require('../nodes/node-red-contrib-octopus/lib/alerts-messages');
const {
    RULES_SQL, CHANNELS_SQL, OPEN_ALERTS_SQL, ATTRIBUTES_SQL, STATUSES_SQL, OUTAGE_SQL,
} = require('../nodes/node-red-contrib-octopus/lib/alerts-store');

const T0 = Date.parse('2026-11-22T12:00:00Z');
const S = 1000;
const TOPIC = 'octopus/alerts/platform/octopus/platform/database/reachable';

/** A clock whose time moves only when told. */
function fakeClock() {
    let now = T0;
    const timers = new Map();
    let seq = 0;
    return {
        now: () => now,
        setTimeout(fn, ms) { seq += 1; timers.set(seq, { at: now + ms, fn }); return seq; },
        clearTimeout(id) { timers.delete(id); },
        advance(ms) { now += ms; },
    };
}

const CHANNELS = [
    { id: 1, name: 'ops mail', kind: 'email', target: 'ops@example.com', severities: ['warning', 'critical'] },
    { id: 2, name: 'pager', kind: 'webhook', target: 'https://hooks.example.com/x?token=s3cret', severities: ['critical'] },
    { id: 3, name: 'bus', kind: 'mqtt', target: 'site/alerts', severities: ['critical'] },
    { id: 4, name: 'chatter', kind: 'mqtt', target: 'site/info', severities: ['info'] },
];

/**
 * PostgreSQL as the service sees it: a pool whose connections take an advisory lock and
 * answer the alert statements (no rules, the channels given, the outage recorded). `up`
 * false: connecting is refused and every connection's statements fail; kill() ends the
 * lock connection as pg_terminate_backend does; `hang`: statements never answer.
 */
function fakeDatabase(channels = CHANNELS) {
    const db = { up: true, hang: false, holder: null, lockClient: null, recorded: [], via: [] };
    function answer(text, values, client) {
        if (text.startsWith('SELECT pg_try_advisory_lock')) {
            if (db.holder === null) db.holder = client;
            return { rows: [{ locked: db.holder === client }] };
        }
        if (text === RULES_SQL || text === OPEN_ALERTS_SQL || text === ATTRIBUTES_SQL || text === STATUSES_SQL) return { rows: [] };
        if (text === CHANNELS_SQL) return { rows: channels };
        if (text === OUTAGE_SQL) {
            db.via.push(client ? 'lock connection' : 'pool');
            const [ruleName, site, room, device, attribute, severity, message, raisedAt, raisedValue, clearedAt, clearedValue,
                at, kind, value, actor, detail] = values;
            const row = {
                id: String(76 + db.recorded.length + 1), rule_id: null, rule_name: ruleName, site, room, device, attribute, severity, message,
                raised_at: raisedAt, raised_value: raisedValue, acked_at: null, acked_by: null, cleared_at: clearedAt,
                cleared_value: clearedValue, flapping: false,
            };
            db.recorded.push({ row, events: kind.map((k, i) => ({ at: at[i], kind: k, value: value[i], actor: actor[i], detail: detail[i] })) });
            return { rows: [row] };
        }
        throw new Error(`unexpected statement: ${text.slice(0, 40)}`);
    }
    const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    db.pool = {
        async connect() {
            if (!db.up) throw refused();
            const client = new EventEmitter();
            client.query = async (text, values) => {
                if (db.hang) return new Promise(() => {});
                if (!db.up || client.dead) throw new Error('Connection terminated unexpectedly');
                return answer(text, values, client);
            };
            client.release = () => {
                client.dead = true;
                if (db.holder === client) db.holder = null;
            };
            db.lockClient = client;
            return client;
        },
        async query(text, values) {
            if (!db.up) throw refused();
            return answer(text, values, null);
        },
    };
    /** The lock connection terminated (and the database down, unless `up`). */
    db.kill = ({ up = false } = {}) => {
        db.up = up;
        const client = db.holder;
        client.dead = true;
        if (db.holder === client) db.holder = null;
        client.emit('error', new Error('terminating connection due to administrator command'));
    };
    return db;
}

function setup({ db = fakeDatabase(), settings = {} } = {}) {
    const clock = fakeClock();
    const out = [[], [], []];
    const events = [];
    const service = new AlertService({
        getPool: () => db.pool,
        settings: {
            refreshMs: 2 * S, dbDownAfterMs: 30 * S, notifyMinIntervalMs: 300 * S, flapCount: 4, flapWindowMs: 600 * S,
            emailFrom: 'octopus@localhost', portalUrl: 'https://octopus.example.com', ...settings,
        },
        publish: (output, msg) => out[output].push(msg),
        onEvent: (e) => events.push(e),
        clock,
        worker: 'nodered-1',
    });
    const states = () => out[0].filter((m) => m.topic === TOPIC).map((m) => ({ ...JSON.parse(m.payload), retain: m.retain, qos: m.qos }));
    /** Refresh every 2 s for `ms`, as the service's loop does. */
    async function refreshFor(ms) {
        for (let t = 0; t < ms; t += 2 * S) {
            clock.advance(2 * S);
            await service.refresh(); // eslint-disable-line no-await-in-loop
        }
    }
    return { db, clock, out, events, service, states, refreshFor, sent: () => out.flat().length };
}

test('alerts outage: a blip shorter than ALERT_DB_DOWN_AFTER_S says nothing and leaves nothing', async () => {
    const t = setup();
    await t.service.refresh();
    assert.equal(t.service.state, 'evaluating');
    t.db.kill();
    assert.equal(t.service.state, 'database unreachable');
    await t.refreshFor(28 * S);
    t.db.up = true;
    await t.refreshFor(2 * S);
    assert.equal(t.service.state, 'evaluating');
    t.db.kill({ up: true }); // killed, and back at once (pg_terminate_backend, a restart)
    await t.refreshFor(2 * S);
    assert.equal(t.service.state, 'evaluating');
    assert.equal(t.sent(), 0);
    assert.deepEqual(t.db.recorded, []);
    assert.equal(t.service.summary().databaseAlert, false);
});

test('alerts outage: the lock holder raises it without the database, clears it and records the outage once it answers', async () => {
    const t = setup();
    await t.service.refresh();
    t.clock.advance(10 * S);
    t.db.kill();
    const since = t.clock.now();
    await t.refreshFor(28 * S);
    assert.equal(t.sent(), 0, 'nothing within the grace period');
    await t.refreshFor(2 * S);
    const [raised, ...more] = t.states();
    assert.deepEqual(more, []);
    assert.deepEqual(raised, {
        id: null, rule_id: null, rule_name: 'database unreachable', site: 'octopus', room: 'platform', device: 'database',
        attribute: 'reachable', severity: 'critical',
        message: 'PostgreSQL unreachable since 2026-11-22T12:00:10.000Z: connect ECONNREFUSED 127.0.0.1:5432',
        state: 'active', raised_at: '2026-11-22T12:00:10.000Z', raised_value: 'false', acked_at: null, acked_by: null,
        cleared_at: null, cleared_value: null, flapping: false, retain: true, qos: 1,
    });
    // the channels read before the outage that take critical alerts, each in its own form
    assert.deepEqual(t.out[1].map((m) => [m.to, m.topic]), [['ops@example.com', `[Octopus critical] ${raised.message}`]]);
    assert.doesNotMatch(t.out[1][0].payload, /\/alerts\//, 'no link: the alert has no id yet');
    assert.deepEqual(t.out[2].map((m) => [m.url, m.payload.event, m.payload.id]), [['https://hooks.example.com/x?token=s3cret', 'raised', null]]);
    assert.deepEqual(t.out[0].filter((m) => !m.retain).map((m) => [m.topic, JSON.parse(m.payload).event]), [['site/alerts', 'raised']]);
    assert.equal(t.service.summary().databaseAlert, true);
    assert.equal(t.events.filter((e) => e.type === 'database-alert').length, 1);

    await t.refreshFor(60 * S);
    assert.equal(t.sent(), 4, 'raised once');
    t.db.up = true;
    await t.refreshFor(2 * S);
    const clearedAt = t.clock.now();
    assert.equal(t.service.state, 'evaluating');

    // stored as an ordinary alert, already cleared, through the lock connection
    assert.equal(t.db.recorded.length, 1);
    const [{ row, events }] = t.db.recorded;
    assert.deepEqual(t.db.via, ['lock connection']);
    assert.deepEqual([row.raised_at.getTime(), row.cleared_at.getTime(), row.raised_value, row.cleared_value], [since, clearedAt, 'false', 'true']);
    assert.deepEqual(events.map((e) => [e.kind, e.actor, e.at.getTime() - since]), [
        ['raised', null, 0],
        ['notified', 'ops mail', 30 * S], ['notified', 'pager', 30 * S], ['notified', 'bus', 30 * S],
        ['cleared', null, 92 * S],
        ['notified', 'ops mail', 92 * S], ['notified', 'pager', 92 * S], ['notified', 'bus', 92 * S],
    ]);
    assert.match(events[0].detail, /^raised without the database by nodered-1 at 2026-11-22T12:00:40\.000Z, after 30 s without an answer$/);
    assert.equal(events[4].detail, 'answered again after 92 s');
    assert.deepEqual(events[1].detail, 'email, raised');

    // the cleared state, with the id it was stored under; the clears to the channels that got the raise
    const cleared = t.states()[1];
    assert.deepEqual([cleared.id, cleared.state, cleared.cleared_at, cleared.cleared_value, cleared.retain], [77, 'cleared', '2026-11-22T12:01:42.000Z', 'true', true]);
    assert.equal(t.out[1][1].topic, `[Octopus critical] cleared: ${raised.message}`);
    assert.match(t.out[1][1].payload, /\nhttps:\/\/octopus\.example\.com\/alerts\/77\n$/);
    assert.deepEqual([t.out[2][1].payload.event, t.out[2][1].payload.id], ['cleared', 77]);
    assert.equal(t.sent(), 8);
    assert.equal(t.service.summary().databaseAlert, false);
});

test('alerts outage: a statement that never answers is a sign too', async () => {
    const t = setup({ settings: { lockTimeoutMs: 20, dbDownAfterMs: 0 } });
    await t.service.refresh();
    t.db.hang = true;
    await t.service.refresh(); // the lock is still held: reading the rules takes too long
    assert.equal(t.service.state, 'database unreachable');
    assert.match(t.states()[0].message, /: no answer from PostgreSQL in 0\.02 s$/);
    t.db.hang = false;
    await t.service.refresh();
    assert.deepEqual(t.states().map((s) => s.state), ['active', 'cleared']);
    assert.equal(t.db.recorded.length, 1);
});

test('alerts outage: a standby worker leaves it to the holder; a worker that never heard of one raises it', async () => {
    const db = fakeDatabase();
    db.holder = 'another worker';
    const standby = setup({ db });
    await standby.service.refresh();
    assert.equal(standby.service.state, 'standby');
    db.up = false;
    await standby.refreshFor(120 * S);
    assert.equal(standby.service.state, 'database unreachable');
    assert.equal(standby.sent(), 0, 'the holder says it');

    // started while the database is down: nobody to leave it to, and no channels known
    const cold = setup({ db });
    await cold.service.refresh();
    await cold.refreshFor(30 * S);
    assert.deepEqual(cold.states().map((s) => s.state), ['active']);
    assert.equal(cold.sent(), 1, 'the state only: the channels are in the database');
    // back, with another worker holding the lock: cleared here, recorded by that one
    db.up = true;
    await cold.refreshFor(2 * S);
    assert.equal(cold.service.state, 'standby');
    assert.deepEqual(cold.states().map((s) => [s.state, s.id]), [['active', null], ['cleared', null]]);
    assert.deepEqual(db.recorded, []);
    assert.deepEqual(cold.events.filter((e) => e.type === 'database-alert').map((e) => [e.state, e.recordedHere]), [['raised', undefined], ['cleared', false]]);

    // the same, taking the lock when it is back: recorded here
    db.holder = null;
    db.up = false;
    const alone = setup({ db });
    await alone.service.refresh();
    await alone.refreshFor(30 * S);
    db.up = true;
    await alone.refreshFor(2 * S);
    assert.equal(alone.service.state, 'evaluating');
    assert.equal(db.recorded.length, 1);
    assert.deepEqual(alone.states().map((s) => [s.state, s.id]), [['active', null], ['cleared', 77]]);
});

test('alerts outage: the holder whose lock another worker took meanwhile still clears and records it', async () => {
    const t = setup();
    await t.service.refresh();
    t.db.kill();
    await t.refreshFor(40 * S);
    t.db.up = true;
    t.db.holder = 'another worker';
    await t.refreshFor(2 * S);
    assert.equal(t.service.state, 'standby');
    assert.deepEqual(t.db.via, ['pool']);
    assert.deepEqual(t.states().map((s) => [s.state, s.id]), [['active', null], ['cleared', 77]]);
    // now a standby worker: the next outage is the new holder's to say
    t.db.up = false;
    await t.refreshFor(60 * S);
    assert.equal(t.states().length, 2);
});

test('alerts outage: a record that fails is reported, and the clear goes out all the same', async () => {
    const t = setup({ settings: { dbDownAfterMs: 0 } });
    await t.service.refresh();
    t.db.kill();
    await t.refreshFor(2 * S);
    const { pool } = t.db;
    t.db.pool = {
        ...pool,
        async connect() {
            const client = await pool.connect();
            const query = client.query;
            client.query = (text, values) => (text === OUTAGE_SQL ? Promise.reject(Object.assign(new Error('no such table'), { code: '42P01' })) : query(text, values));
            return client;
        },
    };
    t.db.up = true;
    await t.refreshFor(2 * S);
    assert.equal(t.service.state, 'evaluating', 'a refused statement is not an outage');
    assert.deepEqual(t.states().map((s) => [s.state, s.id]), [['active', null], ['cleared', null]]);
    const [, cleared] = t.events.filter((e) => e.type === 'database-alert');
    assert.match(cleared.error.message, /no such table/);
});

test('alerts outage: the usual rate limit, per channel; a clear only where the raise went', async () => {
    const clock = fakeClock();
    const out = [[], [], []];
    const watch = new DatabaseWatch({
        publish: (output, msg) => out[output].push(msg), clock, worker: 'w',
        settings: { dbDownAfterMs: 5 * S, notifyMinIntervalMs: 300 * S, emailFrom: 'octopus@localhost', portalUrl: '' },
    });
    watch.setChannels(CHANNELS.slice(0, 1));
    const recorded = [];
    const record = async (alert, events) => { recorded.push(events.map((e) => `${e.kind} ${e.actor || ''}`.trim())); return null; };
    const outage = async (ms) => {
        watch.failed(new Error('down'), true);
        clock.advance(ms);
        watch.failed(new Error('still down'), true);
        await watch.answered(record);
    };
    await outage(10 * S);
    watch.setChannels(CHANNELS.slice(0, 2)); // a channel added in between
    clock.advance(60 * S);
    await outage(10 * S);
    await outage(1 * S); // a blip: nothing
    clock.advance(300 * S);
    await outage(10 * S);
    assert.deepEqual(recorded, [
        ['raised', 'notified ops mail', 'cleared', 'notified ops mail'],
        ['raised', 'suppressed ops mail', 'notified pager', 'cleared', 'suppressed ops mail', 'notified pager'],
        ['raised', 'notified ops mail', 'notified pager', 'cleared', 'notified ops mail', 'notified pager'],
    ]);
    assert.deepEqual(out[0].map((m) => [m.topic, JSON.parse(m.payload).state]), Array(3).fill([[DATABASE_ALERT_TOPIC, 'active'], [DATABASE_ALERT_TOPIC, 'cleared']]).flat());
    assert.equal(DATABASE_ALERT_TOPIC, TOPIC);
    assert.match(out[0][0].payload, /"message":"PostgreSQL unreachable since [^"]+: still down"/, 'the latest error');
});

test('alerts outage: an alert state without an id (not stored yet) keeps it null, and e-mails without a link', () => {
    const row = {
        id: null, rule_id: null, rule_name: 'database unreachable', site: 'octopus', room: 'platform', device: 'database',
        attribute: 'reachable', severity: 'critical', message: 'down', raised_at: new Date(T0), raised_value: 'false',
        acked_at: null, acked_by: null, cleared_at: null, cleared_value: null, flapping: false,
    };
    assert.equal(alertState(row).id, null);
    assert.doesNotMatch(emailBody(row, 'raised', 'https://octopus.example.com'), /http/);
    assert.match(emailBody({ ...row, id: '9' }, 'raised', 'https://octopus.example.com'), /\/alerts\/9\n$/);
});
