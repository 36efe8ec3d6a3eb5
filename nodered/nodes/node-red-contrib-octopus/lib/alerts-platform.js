'use strict';
/**
 * The platform watching itself with ordinary rules: the retained statistics each worker
 * publishes (octopus/stats/ingest/<worker>, octopus/stats/modbus/<worker>; doc/topics.md)
 * turned into readings of a pseudo device octopus/platform/<worker>, so that threshold and
 * stale rules on devices `octopus/platform/+` can say "ingest stopped" or "rejects
 * spiking". No real device can be called so: the ingest never stores a topic under
 * octopus/. Plain module: no Node-RED.
 *
 * Ingest counters only ever grow while a worker runs, so they become rates per minute
 * between two consecutive messages of the same worker (none from its first message, nor
 * across a restart); the rest are taken as they are.
 */

const STATS_TOPIC = /^octopus\/stats\/(ingest|modbus)\/([^/]+)$/;
// ingest counters → <name>_per_min
const INGEST_COUNTERS = ['received', 'stored', 'rejected', 'dropped', 'errors'];
// ingest gauges, taken as they are (connected: a boolean, 1/0 to threshold rules)
const INGEST_GAUGES = ['buffered', 'inflight', 'connected'];

class PlatformReadings {
    constructor() {
        this.previous = new Map(); // ingest worker → {at, since, counters}
    }

    /**
     * A message on `topic` → the readings it makes ([] if none), or null if it is not a
     * statistics topic. `at`: its arrival, ms since the epoch.
     */
    fromStats(topic, payload, at) {
        const m = STATS_TOPIC.exec(typeof topic === 'string' ? topic : '');
        if (!m) return null;
        const [, kind, worker] = m;
        let stats = payload;
        try {
            if (typeof stats === 'string' || Buffer.isBuffer(stats)) stats = JSON.parse(stats.toString());
        } catch (e) {
            return [];
        }
        if (!stats || typeof stats !== 'object') return [];
        const values = kind === 'ingest' ? this.ingest(worker, stats, at) : modbus(stats);
        const ts = new Date(at).toISOString();
        return Object.entries(values).map(([attribute, { value, unit }]) => ({
            site: 'octopus', room: 'platform', device: worker, attribute, ts, value, unit,
        }));
    }

    ingest(worker, stats, at) {
        const values = {};
        for (const g of INGEST_GAUGES) {
            if (typeof stats[g] === 'number' || typeof stats[g] === 'boolean') values[g] = { value: stats[g], unit: null };
        }
        const counters = Object.fromEntries(INGEST_COUNTERS.filter((c) => Number.isFinite(stats[c])).map((c) => [c, stats[c]]));
        const before = this.previous.get(worker);
        this.previous.set(worker, { at, since: stats.since, counters });
        if (!before || before.since !== stats.since || at <= before.at) return values; // first, or a restart
        for (const [c, n] of Object.entries(counters)) {
            if (!(c in before.counters) || n < before.counters[c]) continue;
            values[`${c}_per_min`] = { value: Math.round(((n - before.counters[c]) * 60000) / (at - before.at)), unit: '/min' };
        }
        return values;
    }
}

/** Modbus: how many devices this worker polls, and how many of them are offline. */
function modbus(stats) {
    if (!Array.isArray(stats.devices)) return {};
    return {
        modbus_devices: { value: stats.devices.length, unit: null },
        modbus_offline: { value: stats.devices.filter((d) => d && d.status === 'offline').length, unit: null },
    };
}

module.exports = { PlatformReadings };
