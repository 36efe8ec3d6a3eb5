'use strict';
// The platform watching itself (lib/alerts-platform.js): the workers' retained statistics as
// readings of octopus/platform/<worker>, rates from the ingest's counters, and ordinary
// rules raising on them.
const test = require('node:test');
const assert = require('node:assert/strict');
const { PlatformReadings } = require('../nodes/node-red-contrib-octopus/lib/alerts-platform');
const { AlertEngine } = require('../nodes/node-red-contrib-octopus/lib/alerts-engine');

const T0 = Date.parse('2026-11-22T12:00:00Z');
const ingest = (received, rejected, extra = {}) => JSON.stringify({
    worker: 'nr-1-ingest', received, stored: received - rejected, rejected, ignored: 0, dropped: 0, buffered: 3, batches: 1,
    errors: 0, since: '2026-11-22T11:00:00.000Z', inflight: 5, connected: true, ...extra,
});
const byAttribute = (readings) => Object.fromEntries(readings.map((r) => [r.attribute, r.value]));

test('alerts platform: ingest counters become rates per minute between two messages; gauges as they are', () => {
    const p = new PlatformReadings();
    assert.equal(p.fromStats('oficina/a/b/c', '1', T0), null, 'not a statistics topic');
    assert.equal(p.fromStats('octopus/live', '{}', T0), null);
    const first = p.fromStats('octopus/stats/ingest/nr-1-ingest', ingest(1000, 10), T0);
    assert.deepEqual(byAttribute(first), { buffered: 3, inflight: 5, connected: true }, 'no rate from the first message');
    assert.deepEqual(first[0], { site: 'octopus', room: 'platform', device: 'nr-1-ingest', attribute: 'buffered', ts: '2026-11-22T12:00:00.000Z', value: 3, unit: null });
    const second = p.fromStats('octopus/stats/ingest/nr-1-ingest', Buffer.from(ingest(2000, 40)), T0 + 10e3);
    assert.deepEqual(byAttribute(second), {
        buffered: 3, inflight: 5, connected: true,
        received_per_min: 6000, stored_per_min: 5820, rejected_per_min: 180, dropped_per_min: 0, errors_per_min: 0,
    });
    assert.equal(second.find((r) => r.attribute === 'received_per_min').unit, '/min');
    const restarted = p.fromStats('octopus/stats/ingest/nr-1-ingest', ingest(5, 0, { since: '2026-11-22T12:00:15.000Z' }), T0 + 20e3);
    assert.equal(byAttribute(restarted).received_per_min, undefined, 'a restart is not a negative rate');
    assert.deepEqual(byAttribute(p.fromStats('octopus/stats/modbus/nr-1-ingest', {
        worker: 'nr-1-ingest', state: 'polling', devices: [{ status: 'online' }, { status: 'offline' }, { status: null }],
    }, T0)), { modbus_devices: 3, modbus_offline: 1 });
    assert.deepEqual(p.fromStats('octopus/stats/ingest/x', 'not json', T0), []);
});

test('alerts platform: a rule on octopus/platform/+ says when a worker stops taking messages', async () => {
    let now = T0;
    const timers = [];
    const clock = { now: () => now, setTimeout: (fn, ms) => timers.push({ at: now + ms, fn }) && timers.length, clearTimeout: () => {} };
    const raised = [];
    const engine = new AlertEngine({
        clock,
        store: {
            raise: async (a) => { raised.push(a); return { raised: true, alert: { id: String(raised.length), ...a, raised_at: new Date(now) } }; },
            clear: async () => null,
            events: async () => {},
        },
        publish: () => {},
        settings: { notifyMinIntervalMs: 300e3, flapCount: 4, flapWindowMs: 600e3, emailFrom: 'x', portalUrl: '' },
    });
    engine.applyRules([{
        id: 1, name: 'ingest stopped', kind: 'threshold', devices: 'octopus/platform/+', attribute: 'received_per_min', condition: 'below',
        low: 1, high: null, hysteresis: 0, on_delay_s: 0, off_delay_s: 0, stale_after_s: null, severity: 'critical',
        message: '{device}: {value} messages a minute', enabled: true, updated_at: new Date(T0),
    }], { attributes: [], statuses: [] });
    const p = new PlatformReadings();
    for (const [dt, received] of [[0, 1000], [10e3, 2000], [20e3, 2000]]) {
        now = T0 + dt;
        engine.live({ readings: p.fromStats('octopus/stats/ingest/nr-1-ingest', ingest(received, 0), now), statuses: [] });
    }
    await engine.writes;
    assert.deepEqual(raised.map((a) => [a.site, a.room, a.device, a.attribute, a.message]),
        [['octopus', 'platform', 'nr-1-ingest', 'received_per_min', 'nr-1-ingest: 0 messages a minute']]);
});
