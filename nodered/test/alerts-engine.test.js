'use strict';
// The alert engine (lib/alerts-engine.js) on a fake clock with a store in memory: the four
// threshold conditions, hysteresis, on- and off-delays, a noisy signal, flapping, offline
// and stale rules, rule changes, the open alerts it starts from, notification routing and
// the rate limit. The same engine against a real PostgreSQL: alerts-store.test.js.
const test = require('node:test');
const assert = require('node:assert/strict');
const { AlertEngine } = require('../nodes/node-red-contrib-octopus/lib/alerts-engine');

const T0 = Date.parse('2026-11-22T12:00:00Z');

/** A clock whose time moves only when told: advance(ms) fires the timers due, in order. */
function fakeClock() {
    let now = T0;
    let seq = 0;
    const timers = new Map();
    return {
        now: () => now,
        setTimeout(fn, ms) {
            const delay = ms > 2 ** 31 - 1 ? 1 : ms; // as Node does (TimeoutOverflowWarning)
            seq += 1;
            timers.set(seq, { at: now + delay, fn, id: seq });
            return seq;
        },
        clearTimeout(id) { timers.delete(id); },
        advance(ms) {
            const end = now + ms;
            for (let fired = 0; ; fired += 1) {
                if (fired > 100000) throw new Error('a timer storm: something re-arms itself at once');
                const due = [...timers.values()].filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
                if (!due) break;
                timers.delete(due.id);
                now = due.at;
                due.fn();
            }
            now = end;
        },
        pending: () => timers.size,
    };
}

/** The store's three writes, in memory, with the database's one-open-alert-per-key rule. */
function memoryStore(clock) {
    const store = { alerts: [], log: [], nextId: 1, failing: false };
    const sameKey = (x, a) => ['rule_id', 'site', 'room', 'device', 'attribute'].every((f) => x[f] === a[f]);
    store.raise = async (a) => {
        if (store.failing) throw new Error('refused');
        const open = store.alerts.find((x) => sameKey(x, a) && !x.cleared_at);
        if (open) return { raised: false, alert: open };
        const { flapping_detail: flappingDetail, ...fields } = a;
        const row = {
            id: String(store.nextId++), ...fields, raised_at: new Date(clock.now()), acked_at: null, acked_by: null,
            cleared_at: null, cleared_value: null,
        };
        store.alerts.push(row);
        store.log.push({ alert_id: row.id, kind: 'raised', value: a.raised_value });
        if (flappingDetail) store.log.push({ alert_id: row.id, kind: 'flapping', detail: flappingDetail });
        return { raised: true, alert: { ...row } };
    };
    store.clear = async (id, value, detail) => {
        if (store.failing) throw new Error('refused');
        const row = store.alerts.find((x) => x.id === id && !x.cleared_at);
        if (!row) return null;
        Object.assign(row, { cleared_at: new Date(clock.now()), cleared_value: value });
        store.log.push({ alert_id: id, kind: 'cleared', value, detail });
        return { ...row };
    };
    store.events = async (id, events) => {
        for (const e of events) store.log.push({ alert_id: id, ...e });
    };
    store.kinds = (kind) => store.log.filter((e) => e.kind === kind);
    return store;
}

/** An alert_rules row: a threshold rule 'hot' on every device's temperatura above 30, unless told. */
function ruleRow(fields = {}) {
    return {
        id: 1, name: 'hot', kind: 'threshold', devices: '#', attribute: 'temperatura', condition: 'above', low: null,
        high: 30, hysteresis: 0, on_delay_s: 0, off_delay_s: 0, stale_after_s: null, severity: 'warning', message: '',
        enabled: true, updated_at: new Date(T0 - 3600e3), ...fields,
    };
}
const CHANNELS = [
    { id: 1, name: 'ops mail', kind: 'email', target: 'ops@example.com, boss@example.com', severities: ['warning', 'critical'] },
    { id: 2, name: 'pager', kind: 'webhook', target: 'https://hooks.example.com/x?token=s3cret', severities: ['critical'] },
    { id: 3, name: 'bus', kind: 'mqtt', target: 'site/alerts', severities: ['info', 'warning', 'critical'] },
];
const NOTHING = { attributes: [], statuses: [] };

function setup({ rules = [ruleRow()], channels = [], settings = {}, start = NOTHING, open = [] } = {}) {
    const clock = fakeClock();
    const store = memoryStore(clock);
    const out = [[], [], []];
    const events = [];
    const engine = new AlertEngine({
        clock,
        store,
        publish: (output, msg) => out[output].push(msg),
        settings: {
            notifyMinIntervalMs: 300e3, flapCount: 4, flapWindowMs: 600e3, emailFrom: 'octopus@localhost', portalUrl: '', ...settings,
        },
        onEvent: (e) => events.push(e),
    });
    engine.setChannels(channels);
    engine.applyRules(rules, start, open);
    const where = { site: 'oficina', room: 'servidores', device: 'servidor1' };
    return {
        clock, store, out, events, engine,
        settle: () => engine.writes,
        read: (value, attribute = 'temperatura', at = where) => engine.live({ readings: [{ ...at, attribute, value, unit: '°C', ts: 'x' }] }),
        say: (status, at = where) => engine.live({ statuses: [{ ...at, status, ts: 'x' }] }),
        states: () => out[0].filter((m) => m.retain).map((m) => JSON.parse(m.payload)),
        raised: () => store.alerts.length,
        cleared: () => store.alerts.filter((a) => a.cleared_at).length,
        active: () => engine.summary().active,
    };
}

/** Feed `values` one at a time, `stepMs` apart; settle the writes after each. */
async function feed(t, values, stepMs = 100) {
    for (const v of values) {
        t.read(v);
        await t.settle(); // eslint-disable-line no-await-in-loop
        t.clock.advance(stepMs);
    }
    await t.settle();
}

/** A seeded pseudo-random generator (mulberry32): the same noise on every run. */
function noise(seed) {
    let a = seed;
    return () => {
        a = (a + 0x6D2B79F5) | 0;
        let x = Math.imul(a ^ (a >>> 15), 1 | a);
        x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
        return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
    };
}

test('alerts engine: the four conditions without hysteresis raise and clear where the schema says', async () => {
    const cases = [
        // condition, limits, a value that raises, one that clears, one that does neither
        ['above', { high: 30 }, 30.1, 29.9, 30],
        ['below', { low: 10 }, 9.9, 10.1, 10],
        ['outside', { low: 10, high: 30 }, 31, 20, null],
        ['outside', { low: 10, high: 30 }, 9, 10, null],
        ['inside', { low: 10, high: 30 }, 10, 9.9, null],
        ['inside', { low: 10, high: 30 }, 30, 30.1, null],
    ];
    for (const [condition, limits, raises, clears, neither] of cases) {
        const t = setup({ rules: [ruleRow({ condition, low: null, high: null, ...limits })] });
        await feed(t, [clears]);
        assert.equal(t.raised(), 0, `${condition}: ${clears} raises nothing`);
        await feed(t, [raises, raises]);
        assert.equal(t.raised(), 1, `${condition}: ${raises} raises, once`);
        if (neither !== null) {
            await feed(t, [neither]);
            assert.equal(t.cleared(), 0, `${condition}: ${neither}, on the limit, clears nothing`);
        }
        await feed(t, [clears]);
        assert.equal(t.cleared(), 1, `${condition}: ${clears} clears`);
        assert.equal(t.active(), 0);
    }
});

test('alerts engine: hysteresis is a deadband where the alert keeps its state', async () => {
    const cases = [
        // condition, limits, raise, deadband values, clear
        ['above', { high: 30 }, 31, [29, 28, 30.5], 27.9],
        ['below', { low: 10 }, 9, [11, 12, 9.5], 12.1],
        ['outside', { low: 10, high: 30 }, 31, [29, 11, 5], 20],
        ['inside', { low: 10, high: 30 }, 20, [9, 31, 8], 7.9],
    ];
    for (const [condition, limits, raise, deadband, clear] of cases) {
        const t = setup({ rules: [ruleRow({ condition, low: null, high: null, hysteresis: 2, ...limits })] });
        await feed(t, [raise]);
        await feed(t, deadband);
        assert.deepEqual([t.raised(), t.cleared()], [1, 0], `${condition}: ${deadband} keeps it raised`);
        await feed(t, [clear]);
        assert.deepEqual([t.raised(), t.cleared()], [1, 1], `${condition}: ${clear} clears`);
    }
});

test('alerts engine: an on-delay raises only if every reading meets the condition for that long', async () => {
    const t = setup({ rules: [ruleRow({ on_delay_s: 1 })] });
    await feed(t, [31, 32, 33, 34, 35], 150); // 600 ms over the limit
    await feed(t, [29.9]); // cancels the pending raise
    t.clock.advance(5000);
    await t.settle();
    assert.equal(t.raised(), 0, 'cancelled by a reading below the limit');
    await feed(t, [31, 32], 400);
    t.clock.advance(199);
    await t.settle();
    assert.equal(t.raised(), 0, '999 ms is not a second');
    t.clock.advance(1);
    await t.settle();
    assert.equal(t.raised(), 1, 'raised a second after the first reading over the limit');
    assert.equal(t.store.alerts[0].raised_value, '32', 'with the last reading');
    assert.equal(t.store.alerts[0].raised_at.getTime(), T0 + 5 * 150 + 100 + 5000 + 1000);
});

test('alerts engine: an off-delay clears only if nothing meets the raise condition for that long; the deadband does not cancel it', async () => {
    const t = setup({ rules: [ruleRow({ hysteresis: 2, off_delay_s: 2 })] });
    await feed(t, [31]);
    await feed(t, [27, 27.5], 500); // a pending clear from 27
    await feed(t, [30.5]); // meets the raise condition: cancelled
    t.clock.advance(3000);
    await t.settle();
    assert.equal(t.cleared(), 0);
    await feed(t, [27], 500); // a pending clear again
    await feed(t, [29, 29.5, 28.5], 400); // the deadband: it goes on
    assert.equal(t.cleared(), 0);
    t.clock.advance(300);
    await t.settle();
    assert.equal(t.cleared(), 1, 'cleared two seconds after 27');
    assert.equal(t.store.alerts[0].cleared_value, '28.5', 'with the last reading');
});

test('alerts engine: a noisy signal around the limit, with hysteresis and an on-delay, raises once and clears once', async () => {
    const random = noise(42);
    const noisy = (n) => Array.from({ length: n }, () => 29.5 + random());
    const t = setup({ rules: [ruleRow({ hysteresis: 2, on_delay_s: 1 })], channels: CHANNELS });
    await feed(t, noisy(100)); // 10 s at 10 readings a second
    assert.equal(t.raised(), 0, 'noise alone raises nothing');
    await feed(t, new Array(20).fill(33)); // 2 s over
    await feed(t, noisy(50));
    assert.equal(t.raised(), 1);
    assert.equal(t.cleared(), 0, 'the noise is in the deadband');
    await feed(t, [27, 27, 27]);
    await feed(t, noisy(50));
    assert.deepEqual([t.raised(), t.cleared()], [1, 1]);
    assert.deepEqual(t.states().map((s) => s.state), ['active', 'cleared']);
    assert.equal(t.store.kinds('notified').length, 4, 'raised and cleared, by e-mail and MQTT');
    assert.equal(t.store.kinds('suppressed').length, 0);
});

test('alerts engine: the same signal without hysteresis or delay flaps: flagged, and notifications held back', async () => {
    const random = noise(42);
    const noisy = (n) => Array.from({ length: n }, () => 29.5 + random());
    const t = setup({ rules: [ruleRow()], channels: [CHANNELS[0]] });
    await feed(t, noisy(100));
    const raises = t.raised();
    assert.ok(raises > 10, `raised ${raises} times`);
    assert.deepEqual(t.store.alerts.map((a) => a.flapping).slice(0, 4), [false, false, false, true], 'the fourth raise in the window flaps');
    assert.ok(t.store.alerts.slice(3).every((a) => a.flapping), 'and so does every raise after it');
    assert.equal(t.store.kinds('flapping').length, 1, 'one flapping event, on the alert that started it');
    assert.equal(t.store.kinds('flapping')[0].alert_id, t.store.alerts[3].id);
    assert.equal(t.store.kinds('notified').length, 2, 'the first raise and its clear');
    assert.deepEqual(t.out[1].map((m) => m.topic.split(']')[1].split(':')[0]), [' hot', ' cleared']);
    assert.equal(t.store.kinds('suppressed').length, 1, 'one suppressed event per interval, not one per raise');
    assert.equal(t.events.filter((e) => e.type === 'flapping').length, 1);

    // the rate limit's interval is over, but it is still flapping: held back, one event
    t.clock.advance(300e3);
    await feed(t, [31, 29]);
    assert.equal(t.store.kinds('notified').length, 2);
    assert.equal(t.store.kinds('suppressed').length, 2);
    assert.match(t.store.kinds('suppressed')[1].detail, /^raised: flapping/);

    // quiet for the window: not flapping any more, notified again
    t.clock.advance(600e3);
    await feed(t, [31]);
    assert.equal(t.store.alerts.at(-1).flapping, false);
    assert.equal(t.store.kinds('notified').length, 3);
});

test('alerts engine: offline rules raise on offline and clear on online, after their delays', async () => {
    const t = setup({ rules: [ruleRow({ kind: 'offline', attribute: null, condition: null, high: null, devices: 'oficina/+/+', on_delay_s: 10, off_delay_s: 5 })] });
    t.say('offline');
    t.clock.advance(5000);
    t.say('online'); // back before the on-delay: nothing
    t.clock.advance(20e3);
    await t.settle();
    assert.equal(t.raised(), 0);
    t.say('offline');
    t.clock.advance(10e3);
    await t.settle();
    assert.equal(t.raised(), 1);
    assert.deepEqual(
        (({ attribute, raised_value: v, message }) => ({ attribute, v, message }))(t.store.alerts[0]),
        { attribute: 'status', v: 'offline', message: 'hot: oficina/servidores/servidor1 is offline' },
    );
    t.say('online');
    t.clock.advance(3000);
    t.say('offline'); // cancels the pending clear
    t.clock.advance(10e3);
    await t.settle();
    assert.equal(t.cleared(), 0);
    t.say('online');
    t.clock.advance(5000);
    await t.settle();
    assert.equal(t.cleared(), 1);
    assert.equal(t.store.alerts[0].cleared_value, 'online');
    t.say('offline', { site: 'planta', room: 'nave', device: 'plc1' });
    t.clock.advance(20e3);
    await t.settle();
    assert.equal(t.raised(), 1, 'a device the filter does not take');
});

test('alerts engine: offline rules start from the devices\' last status', async () => {
    const at = (s) => new Date(T0 - s * 1000);
    const start = {
        attributes: [],
        statuses: [
            { site: 'a', room: 'b', device: 'gone', status: 'offline', status_at: at(60) }, // offline for a minute: at once
            { site: 'a', room: 'b', device: 'just', status: 'offline', status_at: at(5) }, // 5 s: in 5 s
            { site: 'a', room: 'b', device: 'fine', status: 'online', status_at: at(60) },
        ],
    };
    const t = setup({ rules: [ruleRow({ kind: 'offline', attribute: null, condition: null, high: null, on_delay_s: 10 })], start });
    await t.settle();
    assert.deepEqual(t.store.alerts.map((a) => a.device), ['gone']);
    t.clock.advance(5000);
    await t.settle();
    assert.deepEqual(t.store.alerts.map((a) => a.device), ['gone', 'just']);
});

test('alerts engine: a status lost on the way (octopus/live is QoS 0) is caught up with from the database', async () => {
    const t = setup({ rules: [ruleRow({ kind: 'offline', attribute: null, condition: null, high: null, on_delay_s: 10, off_delay_s: 10 })] });
    const row = (status, secondsAgo) => ({ site: 'oficina', room: 'servidores', device: 'servidor1', status, status_at: new Date(t.clock.now() - secondsAgo * 1000) });
    t.engine.statuses([row('offline', 4)]); // the live message was lost
    t.clock.advance(5000);
    await t.settle();
    assert.equal(t.raised(), 0, 'the on-delay counts from the status\'s time');
    t.engine.statuses([row('offline', 5)]); // every refresh: nothing new
    t.clock.advance(1000);
    await t.settle();
    assert.equal(t.raised(), 1, 'raised 10 s after the device said offline');
    t.say('online'); // heard: a pending clear from now
    t.clock.advance(2000);
    t.engine.statuses([row('offline', 100)]); // a snapshot read just before that commit: cancels it...
    t.engine.statuses([row('online', 2)]); // ...the next refresh starts it again from the same time
    t.clock.advance(8000);
    await t.settle();
    assert.equal(t.cleared(), 1, 'cleared 10 s after online, as if nothing was lost');
    assert.ok(t.engine.watchesStatuses());
});

test('alerts engine: stale rules raise when an attribute goes quiet, and clear on its next reading', async () => {
    const t = setup({ rules: [ruleRow({ kind: 'stale', condition: null, high: null, stale_after_s: 60, off_delay_s: 0 })] });
    t.read(21);
    t.clock.advance(59e3);
    t.read(21.5); // in time: the deadline moves
    t.clock.advance(59e3);
    await t.settle();
    assert.equal(t.raised(), 0);
    t.clock.advance(1000);
    await t.settle();
    assert.equal(t.raised(), 1, 'sixty seconds without a reading');
    assert.equal(t.store.alerts[0].message, 'hot: no reading of oficina/servidores/servidor1/temperatura for 60 s');
    assert.equal(t.store.alerts[0].raised_value, '21.5', 'the last value heard');
    t.clock.advance(600e3);
    await t.settle();
    assert.equal(t.raised(), 1, 'raised once, not every minute');
    t.read(22);
    await t.settle();
    assert.equal(t.cleared(), 1);
    assert.equal(t.store.alerts[0].cleared_value, '22');
    t.read(22, 'humedad');
    t.clock.advance(60e3);
    await t.settle();
    assert.equal(t.raised(), 2, 'the quiet temperatura again; humedad is not watched');
    assert.equal(t.store.alerts[1].attribute, 'temperatura');
});

test('alerts engine: stale rules start from when each attribute was last heard', async () => {
    const where = { site: 'planta', room: 'nave', device: 'plc1' };
    const start = {
        attributes: [
            { ...where, attribute: 'presion', unit: 'bar', last_seen: new Date(T0 - 600e3), last_value: '2.5' }, // quiet for 10 min
            { ...where, attribute: 'caudal', unit: 'l/s', last_seen: new Date(T0 - 30e3), last_value: '7' }, // 30 s ago
            { site: 'oficina', room: 'x', device: 'y', attribute: 'presion', unit: null, last_seen: new Date(T0 - 600e3), last_value: '1' },
        ],
        statuses: [],
    };
    const t = setup({ rules: [ruleRow({ kind: 'stale', devices: 'planta/#', attribute: '+', condition: null, high: null, stale_after_s: 60, off_delay_s: 10 })], start });
    await t.settle();
    assert.deepEqual(t.store.alerts.map((a) => [a.attribute, a.raised_value]), [['presion', '2.5']], 'quiet for long: raised at once');
    t.clock.advance(30e3);
    await t.settle();
    assert.deepEqual(t.store.alerts.map((a) => a.attribute), ['presion', 'caudal'], 'the other when its minute is up');
    t.read(3, 'presion', where);
    t.clock.advance(5e3);
    t.read(3.1, 'presion', where);
    await t.settle();
    assert.equal(t.cleared(), 0, 'the off-delay');
    t.clock.advance(5e3);
    await t.settle();
    assert.equal(t.cleared(), 1);
    t.read(1, 'nivel', where); // never seen before: watched from its first reading
    t.clock.advance(60e3);
    await t.settle();
    assert.ok(t.store.alerts.some((a) => a.attribute === 'nivel'));
});

test('alerts engine: strings are not for threshold rules; booleans count as 1 and 0', async () => {
    const t = setup({ rules: [ruleRow({ attribute: '+', high: 0.5 })] });
    await feed(t, ['on', 'alarm']);
    assert.equal(t.raised(), 0);
    await feed(t, [true]);
    assert.equal(t.raised(), 1);
    assert.equal(t.store.alerts[0].raised_value, 'true');
    await feed(t, [false]);
    assert.equal(t.cleared(), 1);
});

test('alerts engine: the rule\'s message template, and the default one', async () => {
    const t = setup({
        rules: [
            ruleRow({ id: 1, message: '{severity}: {device} in {site}/{room} has {attribute} at {value} {unit} ({rule}, {topic}) {nope}' }),
            ruleRow({ id: 2, name: 'hot too' }),
        ],
    });
    await feed(t, [31.5]);
    assert.deepEqual(t.store.alerts.map((a) => a.message), [
        'warning: servidor1 in oficina/servidores has temperatura at 31.5 °C (hot, oficina/servidores/servidor1/temperatura) {nope}',
        'hot too: oficina/servidores/servidor1/temperatura = 31.5°C',
    ]);
});

test('alerts engine: notifications go to the channels taking the severity, each in its own form', async () => {
    for (const [severity, expected] of [['info', ['bus']], ['warning', ['ops mail', 'bus']], ['critical', ['ops mail', 'pager', 'bus']]]) {
        const t = setup({ rules: [ruleRow({ severity })], channels: CHANNELS });
        await feed(t, [31]);
        assert.deepEqual(t.store.kinds('notified').map((e) => e.actor).sort(), expected.sort(), severity);
    }
    const t = setup({ rules: [ruleRow({ severity: 'critical', message: 'too hot: {value}{unit}' })], channels: CHANNELS });
    await feed(t, [31]);
    const [state, mqtt] = t.out[0];
    assert.deepEqual({ ...state, payload: undefined }, {
        topic: 'octopus/alerts/1/oficina/servidores/servidor1/temperatura', payload: undefined, qos: 1, retain: true,
    });
    const alert = JSON.parse(state.payload);
    assert.deepEqual(alert, {
        id: 1, rule_id: 1, rule_name: 'hot', site: 'oficina', room: 'servidores', device: 'servidor1', attribute: 'temperatura',
        severity: 'critical', message: 'too hot: 31°C', state: 'active', raised_at: '2026-11-22T12:00:00.000Z', raised_value: '31',
        acked_at: null, acked_by: null, cleared_at: null, cleared_value: null, flapping: false,
    });
    assert.deepEqual({ ...mqtt, payload: JSON.parse(mqtt.payload) }, {
        topic: 'site/alerts', payload: { ...alert, event: 'raised' }, qos: 1, retain: false,
    });
    const [mail] = t.out[1];
    assert.deepEqual(Object.keys(mail).sort(), ['from', 'payload', 'to', 'topic']);
    assert.equal(mail.to, 'ops@example.com, boss@example.com');
    assert.equal(mail.from, 'octopus@localhost');
    assert.equal(mail.topic, '[Octopus critical] too hot: 31°C');
    assert.match(mail.payload, /^too hot: 31°C\n\nAlert: {6}raised \(critical\)\nRule: {7}hot\nDevice: {5}oficina\/servidores\/servidor1\n/);
    assert.deepEqual(t.out[2], [{
        url: 'https://hooks.example.com/x?token=s3cret', method: 'POST', headers: { 'content-type': 'application/json' },
        payload: { ...alert, event: 'raised' },
    }]);
    const notified = t.store.kinds('notified');
    assert.deepEqual(notified.map((e) => e.detail).sort(), ['email, raised', 'mqtt, raised', 'webhook, raised']);
    assert.ok(notified.every((e) => !/s3cret|example/.test(e.detail)), 'no target (it may hold a token) in the history');

    t.clock.advance(301e3);
    await feed(t, [29]);
    assert.equal(t.out[1][1].topic, '[Octopus critical] cleared: too hot: 31°C');
    assert.match(t.out[1][1].payload, /Cleared: {4}2026-11-22T12:05:01\.100Z, value 29\n/);
    assert.equal(t.out[2][1].payload.event, 'cleared');
    assert.equal(t.out[2][1].payload.state, 'cleared');
});

test('alerts engine: at most one notification per key and channel per interval; what is held back is said once', async () => {
    const t = setup({ rules: [ruleRow()], channels: [CHANNELS[0]], settings: { flapCount: 1000 } });
    await feed(t, [31, 29, 31, 29, 31, 29], 10e3); // a minute: three raises, three clears
    assert.deepEqual(t.store.kinds('notified').map((e) => [e.alert_id, e.detail]), [['1', 'email, raised'], ['1', 'email, cleared']],
        'the first raise, and its clear');
    assert.deepEqual(t.store.kinds('suppressed').map((e) => [e.alert_id, e.actor, e.detail]),
        [['2', 'ops mail', 'raised: rate limit: at most one notification per 300 s']], 'said once for the rest');
    t.read(31, 'temperatura', { site: 'oficina', room: 'servidores', device: 'servidor2' });
    await t.settle();
    assert.equal(t.store.kinds('notified').length, 3, 'another device is another key');
    t.clock.advance(300e3);
    await feed(t, [31]);
    assert.equal(t.store.kinds('notified').length, 4, 'the interval is over');
    t.clock.advance(10e3);
    await feed(t, [29]);
    assert.equal(t.store.kinds('notified').length, 5, 'its clear, well within the interval: they heard of the raise');
});

test('alerts engine: a changed rule starts again but keeps its open alerts; removed and disabled rules clear theirs', async () => {
    const t = setup({ rules: [ruleRow({ id: 1, on_delay_s: 5 }), ruleRow({ id: 2, name: 'cold', condition: 'below', high: null, low: 10 })] });
    await feed(t, [31]);
    t.clock.advance(5000);
    await feed(t, [31]);
    assert.equal(t.raised(), 1);
    await feed(t, [35]); // a pending clear? no: 35 is over the limit; nothing pending
    t.engine.applyRules([ruleRow({ id: 1, high: 40, hysteresis: 1, updated_at: new Date(T0) }), ruleRow({ id: 2, name: 'cold', condition: 'below', high: null, low: 10 })], NOTHING);
    await t.settle();
    assert.equal(t.cleared(), 0, 'still open');
    await feed(t, [39.5]);
    assert.equal(t.cleared(), 0, '39.5 is in the new deadband');
    await feed(t, [38.9]);
    assert.equal(t.cleared(), 1, 'the new rule clears it');
    assert.equal(t.raised(), 1, 'and did not raise it again');

    await feed(t, [5]);
    assert.equal(t.raised(), 2);
    t.engine.applyRules([ruleRow({ id: 1, high: 40, hysteresis: 1, updated_at: new Date(T0) }), ruleRow({ id: 2, enabled: false })], NOTHING);
    await t.settle();
    assert.equal(t.store.kinds('cleared').at(-1).detail, 'rule disabled');
    await feed(t, [41]);
    t.engine.applyRules([], NOTHING);
    await t.settle();
    assert.equal(t.store.kinds('cleared').at(-1).detail, 'rule removed');
    assert.deepEqual(t.states().map((s) => s.state), ['active', 'cleared', 'active', 'cleared', 'active', 'cleared']);
    assert.equal(t.active(), 0);
    assert.equal(t.clock.pending(), 0, 'no timer left');
});

test('alerts engine: a rule changed so that it no longer watches an open alert clears it', async () => {
    const t = setup();
    await feed(t, [31]);
    t.engine.applyRules([ruleRow({ devices: 'planta/#', updated_at: new Date(T0) })], NOTHING);
    await t.settle();
    assert.deepEqual(t.store.kinds('cleared').map((e) => e.detail), ['rule changed']);
    assert.equal(t.out[1].length, 0, 'an administrative clear notifies nobody');
});

test('alerts engine: a rule it cannot evaluate is reported once and clears its alerts', async () => {
    const t = setup();
    await feed(t, [31]);
    const bad = ruleRow({ devices: 'oficina/#/x', updated_at: new Date(T0) });
    t.engine.applyRules([bad], NOTHING);
    t.engine.applyRules([bad], NOTHING);
    await t.settle();
    assert.equal(t.events.filter((e) => e.type === 'bad-rule').length, 1);
    assert.match(t.events.find((e) => e.type === 'bad-rule').problem, /'#' must be the last level/);
    assert.match(t.store.kinds('cleared')[0].detail, /^rule not evaluated: devices:/);
    assert.deepEqual(t.engine.summary(), { rules: 0, active: 0 });
});

test('alerts engine: open alerts it starts from are active: not raised twice, cleared as usual; orphans cleared', async () => {
    const open = [
        { id: '7', rule_id: 1, rule_name: 'hot', site: 'oficina', room: 'servidores', device: 'servidor1', attribute: 'temperatura',
            severity: 'warning', message: 'm', raised_at: new Date(T0 - 60e3), raised_value: '33', acked_at: null, acked_by: null,
            cleared_at: null, cleared_value: null, flapping: false },
        { id: '8', rule_id: null, rule_name: 'deleted', site: 'a', room: 'b', device: 'c', attribute: 'd', severity: 'info',
            message: 'm', raised_at: new Date(T0 - 60e3), raised_value: '1', acked_at: null, acked_by: null, cleared_at: null,
            cleared_value: null, flapping: false },
    ];
    const t = setup({ open });
    t.store.alerts.push(...open.map((a) => ({ ...a })));
    await t.settle();
    assert.deepEqual(t.store.kinds('cleared').map((e) => [e.alert_id, e.detail]), [['8', 'rule removed']]);
    assert.equal(t.out[0].length, 0, 'the topic of a deleted rule is not known: nothing published');
    assert.equal(t.active(), 1);
    await feed(t, [34]);
    assert.equal(t.store.alerts.length, 2, 'not raised again');
    await feed(t, [29]);
    assert.deepEqual(t.store.kinds('cleared').map((e) => e.alert_id), ['8', '7']);
    assert.equal(t.states()[0].id, 7);
});

test('alerts engine: a write that fails raises nothing twice and crashes nothing', async () => {
    const t = setup();
    t.store.failing = true;
    await feed(t, [31, 32, 33]);
    assert.equal(t.events.filter((e) => e.type === 'write-failed').length, 1, 'the one raise decided');
    assert.equal(t.active(), 1, 'kept in memory');
    t.store.failing = false;
    await feed(t, [34]);
    assert.equal(t.raised(), 0, 'not raised again');
    await feed(t, [29, 31]);
    assert.equal(t.raised(), 1, 'the next one is');
    assert.equal(t.out[0].length, 1);
});

test('alerts engine: stop() cancels every timer and ends with the writes decided', async () => {
    const t = setup({ rules: [ruleRow({ on_delay_s: 10 }), ruleRow({ id: 2, kind: 'stale', stale_after_s: 60, condition: null, high: null })] });
    t.read(31);
    assert.ok(t.clock.pending() > 0);
    await t.engine.stop();
    assert.equal(t.clock.pending(), 0);
    t.read(40);
    t.clock.advance(120e3);
    await t.settle();
    assert.equal(t.raised(), 0);
});

test('alerts engine: a delay longer than setTimeout takes (~24.8 days) waits in steps, not at once', async () => {
    const t = setup({ rules: [ruleRow({ kind: 'stale', condition: null, high: null, stale_after_s: 30 * 86400 })] });
    t.read(1);
    t.clock.advance(29 * 86400e3);
    await t.settle();
    assert.equal(t.raised(), 0);
    t.clock.advance(86400e3);
    await t.settle();
    assert.equal(t.raised(), 1);
});
