'use strict';
// The pieces of the alert engine that are plain functions: the device filter (lib/topic.js),
// rules made ready and their conditions (lib/alerts-rules.js), messages, the alert-state
// JSON and the notification e-mail (lib/alerts-messages.js), the settings, the input.
const test = require('node:test');
const assert = require('node:assert/strict');
const { compileTopicFilter } = require('../nodes/node-red-contrib-octopus/lib/topic');
const {
    prepareRule, ruleMatches, raiseHolds, clearHolds, numericValue, ruleSignature,
} = require('../nodes/node-red-contrib-octopus/lib/alerts-rules');
const {
    renderMessage, alertState, stateMessage, emailBody, alertTopic,
} = require('../nodes/node-red-contrib-octopus/lib/alerts-messages');
const { resolveAlertSettings, engineSettings } = require('../nodes/node-red-contrib-octopus/lib/alerts-settings');
const { parseLive } = require('../nodes/node-red-contrib-octopus/lib/alerts-service');

const row = (fields = {}) => ({
    id: 3, name: 'hot', kind: 'threshold', devices: '#', attribute: 'temperatura', condition: 'above', low: null, high: 30,
    hysteresis: 0, on_delay_s: 0, off_delay_s: 0, stale_after_s: null, severity: 'warning', message: '', enabled: true,
    updated_at: new Date('2026-11-22T12:00:00Z'), ...fields,
});

test('alerts: the device filter is MQTT\'s: + one level, # the rest, else exact', () => {
    const matches = (filter, topic) => compileTopicFilter(filter, 3).match(topic);
    assert.ok(matches('#', 'oficina/servidores/servidor1'));
    assert.ok(matches('oficina/#', 'oficina/servidores/servidor1'));
    assert.ok(!matches('planta/#', 'oficina/servidores/servidor1'));
    assert.ok(matches('oficina/+/servidor1', 'oficina/servidores/servidor1'));
    assert.ok(!matches('oficina/+/servidor1', 'oficina/servidores/servidor2'));
    assert.ok(matches('+/+/+', 'a/b/c'));
    assert.ok(matches('a/b/c', 'a/b/c'));
    assert.ok(!matches('a/b/c', 'a/b/cc'), 'levels are compared whole');
    assert.ok(!matches('a/b/c', 'a/b/c/d'));
    assert.ok(matches('a/+/#', 'a/b/c'));
    assert.ok(matches('a/b/c/#', 'a/b/c'), "'#' also matches the level above it, as in MQTT");
    assert.ok(matches('oficina.x/(y)/[z]', 'oficina.x/(y)/[z]'), 'no pattern characters but + and #');
    for (const [filter, problem] of [
        ['', /empty/], ['a/#/c', /'#' must be the last level/], ['a/b+/c', /whole level/], ['a//c', /empty level/],
        ['a/b', /2 levels: it can never match a topic of 3/], ['a/b/c/d', /4 levels/], ['a/b/c/d/#', /5 levels/],
    ]) {
        assert.match(compileTopicFilter(filter, 3).problem, problem, filter);
    }
});

test('alerts: a rule row made ready, and what cannot be evaluated', () => {
    const { rule } = prepareRule(row({ on_delay_s: 1.5, off_delay_s: 2, hysteresis: 0.5 }));
    assert.equal(rule.onDelayMs, 1500);
    assert.equal(rule.offDelayMs, 2000);
    assert.equal(rule.message, '{rule}: {topic} = {value}{unit}', 'the default message');
    assert.ok(ruleMatches(rule, 'a/b/c', 'temperatura'));
    assert.ok(!ruleMatches(rule, 'a/b/c', 'humedad'));
    assert.ok(ruleMatches(prepareRule(row({ attribute: '+' })).rule, 'a/b/c', 'humedad'));
    assert.equal(prepareRule(row({ kind: 'offline', attribute: null })).rule.attribute, 'status');
    assert.match(prepareRule(row({ kind: 'offline', attribute: null })).rule.message, /is offline$/);
    assert.match(prepareRule(row({ devices: 'a/+' })).problem, /^devices: "a\/\+" has 2 levels/);
    assert.match(prepareRule(row({ condition: 'outside', low: 10, high: 12, hysteresis: 1.5 })).problem, /would never clear/);
    assert.ok(prepareRule(row({ condition: 'outside', low: 10, high: 12, hysteresis: 1 })).rule, 'a deadband up to the middle is fine');
    assert.notEqual(ruleSignature(row()), ruleSignature(row({ high: 31 })));
    assert.notEqual(ruleSignature(row()), ruleSignature(row({ updated_at: new Date('2026-11-22T12:00:01Z') })));
    assert.equal(ruleSignature(row()), ruleSignature(row({ enabled: false, created_at: new Date() })));
});

test('alerts: raise and clear conditions with a deadband', () => {
    const r = (condition, low, high, hysteresis = 2) => prepareRule(row({ condition, low, high, hysteresis })).rule;
    const table = [
        [r('above', null, 30), [[30, false, false], [30.1, true, false], [28, false, false], [27.9, false, true]]],
        [r('below', 10, null), [[10, false, false], [9.9, true, false], [12, false, false], [12.1, false, true]]],
        [r('outside', 10, 30), [[9.9, true, false], [30.1, true, false], [11, false, false], [12, false, true], [28, false, true], [29, false, false]]],
        [r('inside', 10, 30), [[10, true, false], [30, true, false], [9, false, false], [7.9, false, true], [32.1, false, true]]],
    ];
    for (const [rule, cases] of table) {
        for (const [v, raise, clear] of cases) {
            assert.deepEqual([raiseHolds(rule, v), clearHolds(rule, v)], [raise, clear], `${rule.condition} ${v}`);
        }
    }
    assert.equal(numericValue(true), 1);
    assert.equal(numericValue(false), 0);
    assert.equal(numericValue('12'), null, 'a state string, even one that looks like a number');
    assert.equal(numericValue(NaN), null);
});

test('alerts: the message template replaces its fields once, and leaves other braces', () => {
    const fields = { rule: 'hot {device}', site: 's', room: 'r', device: 'd', attribute: 'a', value: 21.5, unit: null, severity: 'info' };
    assert.equal(renderMessage('{rule}|{site}|{room}|{device}|{attribute}|{value}|{unit}|{severity}|{topic}|{x}|{ rule }', fields),
        'hot {device}|s|r|d|a|21.5||info|s/r/d/a|{x}|{ rule }');
    assert.equal(renderMessage('{value}', { ...fields, value: null }), '');
    assert.equal(renderMessage('{value}', { ...fields, value: false }), 'false');
});

const ALERT_ROW = {
    id: '42', rule_id: 3, rule_name: 'hot', site: 'oficina', room: 'servidores', device: 'servidor1', attribute: 'temperatura',
    severity: 'critical', message: 'too hot: 31.5°C', raised_at: new Date('2026-11-22T12:00:00.123Z'), raised_value: '31.5',
    acked_at: null, acked_by: null, cleared_at: null, cleared_value: null, flapping: false,
};

test('alerts: the alert-state JSON (the portal publishes the same shape) and its retained topic', () => {
    assert.deepEqual(Object.keys(alertState(ALERT_ROW)), [
        'id', 'rule_id', 'rule_name', 'site', 'room', 'device', 'attribute', 'severity', 'message', 'state', 'raised_at',
        'raised_value', 'acked_at', 'acked_by', 'cleared_at', 'cleared_value', 'flapping',
    ]);
    assert.equal(alertState(ALERT_ROW).id, 42, 'a number, though pg reads bigint as a string');
    assert.equal(alertState(ALERT_ROW).raised_at, '2026-11-22T12:00:00.123Z');
    assert.equal(alertState(ALERT_ROW).state, 'active');
    const acked = { ...ALERT_ROW, acked_at: new Date('2026-11-22T12:01:00Z'), acked_by: 'ana' };
    assert.equal(alertState(acked).state, 'acknowledged');
    assert.equal(alertState({ ...acked, cleared_at: new Date('2026-11-22T12:02:00Z'), cleared_value: '27' }).state, 'cleared');
    assert.equal(alertState({ ...ALERT_ROW, raised_at: '2026-11-22T13:00:00+01:00' }).raised_at, '2026-11-22T12:00:00.000Z');
    assert.equal(alertTopic(3, ALERT_ROW), 'octopus/alerts/3/oficina/servidores/servidor1/temperatura');
    const msg = stateMessage(3, { ...ALERT_ROW, rule_id: null });
    assert.equal(msg.topic, 'octopus/alerts/3/oficina/servidores/servidor1/temperatura', 'a deleted rule\'s alert keeps its topic');
    assert.equal(JSON.parse(msg.payload).rule_id, null);
    assert.deepEqual([msg.qos, msg.retain], [1, true]);
});

test('alerts: the e-mail body is plain text, with a link when the portal URL is known', () => {
    const body = emailBody({ ...ALERT_ROW, message: 'value <high or <b>bold</b>', flapping: true }, 'raised', 'https://octopus.example.com/');
    assert.match(body, /^value < high or < b>bold<\/b>\n/, 'nothing the e-mail node would take for HTML');
    assert.doesNotMatch(body, /<[a-z][\s\S]*>/i);
    assert.match(body, /\nFlapping: {3}yes/);
    assert.match(body, /\nhttps:\/\/octopus\.example\.com\/alerts\/42\n$/);
    assert.doesNotMatch(emailBody(ALERT_ROW, 'raised', ''), /http/);
});

test('alerts: settings from the node, else the environment, else the defaults', () => {
    const { settings, problems } = resolveAlertSettings({}, {});
    assert.deepEqual(settings, {
        refreshS: 2, notifyMinIntervalS: 300, flapCount: 4, flapWindowS: 600, dbDownAfterS: 30, emailFrom: 'octopus@localhost', portalUrl: '',
    });
    assert.deepEqual(problems, []);
    const env = {
        ALERTS_REFRESH_S: '5', ALERT_NOTIFY_MIN_INTERVAL_S: '0', ALERT_FLAP_COUNT: '1', ALERT_FLAP_WINDOW_S: '60',
        ALERT_DB_DOWN_AFTER_S: '0', ALERT_EMAIL_FROM: 'alerts@plant.example', PORTAL_URL: 'not a url',
    };
    const fromEnv = resolveAlertSettings({ refreshS: '3' }, env);
    assert.deepEqual(fromEnv.settings, {
        refreshS: 3, notifyMinIntervalS: 0, flapCount: 4, flapWindowS: 60, dbDownAfterS: 0, emailFrom: 'alerts@plant.example', portalUrl: '',
    });
    assert.equal(fromEnv.problems.length, 2);
    assert.match(fromEnv.problems[0], /ALERT_FLAP_COUNT="1" is not a whole number ≥ 2; using 4/);
    assert.match(fromEnv.problems[1], /PORTAL_URL="not a url" is not an http\(s\) URL/);
    assert.deepEqual(engineSettings(fromEnv.settings), {
        notifyMinIntervalMs: 0, flapCount: 4, flapWindowMs: 60000, dbDownAfterMs: 0, emailFrom: 'alerts@plant.example', portalUrl: '',
    });
});

test('alerts: octopus/live as an object, a string or a Buffer; anything else is refused', () => {
    const live = { readings: [{ site: 'a', room: 'b', device: 'c', attribute: 'd', value: 1 }], statuses: [], rejects: 0 };
    assert.deepEqual(parseLive(live), live);
    assert.deepEqual(parseLive(JSON.stringify(live)), live);
    assert.deepEqual(parseLive(Buffer.from(JSON.stringify(live))), live);
    for (const bad of ['{', '42', 'null', null, 7, { value: 1 }]) assert.equal(parseLive(bad), null, JSON.stringify(bad));
});
