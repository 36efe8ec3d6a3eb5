'use strict';
/**
 * One device's poller: its own timer, its own connection, at most one poll in flight, so a
 * dead or slow device delays nothing but itself. Publishes readings and availability on the
 * topic contract (doc/topics.md) and keeps the counters of modbus_poll_stats.
 * Plain module: no Node-RED.
 *
 * Ticks are at start + k × interval, computed from the start, never chained (chained timers
 * drift by their own lateness, a few ms a tick). A tick that finds the previous poll still
 * running is skipped and counted as an overflow.
 */

const { performance } = require('perf_hooks');
const { ModbusConnection, classifyError } = require('./modbus-connection');
const { decodeBlock } = require('./modbus-decode');

const COUNTER = { timeout: 'timeouts', exception: 'exceptions', connection: 'connection_errors', garbage: 'garbage' };

/** The counters of a device not polled yet (modbus_poll_stats's columns). */
function emptyCounters() {
    return {
        polls: 0, ok: 0, timeouts: 0, exceptions: 0, connection_errors: 0, garbage: 0, overflows: 0,
        consecutive_failures: 0, last_ok_at: null, last_error: null, last_error_at: null, late_ms_max: null,
    };
}

class DevicePoller {
    /**
     * @param {object} opts
     * @param {object} opts.device  a modbus_devices row (id, site, room, name, host, port, unit_id, poll_interval_ms)
     * @param {object[]} opts.plan  the profile's reads (modbus-plan.js)
     * @param {number} opts.timeoutMs  per request and per connect
     * @param {number} opts.backoffMaxMs  longest wait between two connect attempts
     * @param {number} opts.offlineAfter  consecutive failed polls before `offline`
     * @param {(msgs: object[]) => void} opts.publish  MQTT messages, {topic, payload, qos, retain}
     * @param {number} [opts.phaseMs]  delay of the first tick (spreads devices over the interval)
     * @param {string|null} [opts.status]  availability already published for this topic
     * @param {(attribute: string) => void} [opts.onBadValue]  a float that is not finite: not published
     */
    constructor(opts) {
        this.device = opts.device;
        this.plan = opts.plan;
        this.interval = opts.device.poll_interval_ms;
        this.timeoutMs = opts.timeoutMs;
        this.backoffMaxMs = Math.max(opts.backoffMaxMs, this.interval);
        this.offlineAfter = opts.offlineAfter;
        this.publish = opts.publish;
        this.phaseMs = opts.phaseMs || 0;
        this.onBadValue = opts.onBadValue || (() => {});
        this.connect = opts.connect || ((o) => new ModbusConnection(o));
        this.base = `${this.device.site}/${this.device.room}/${this.device.name}`;
        this.status = opts.status || null;
        this.conn = null;
        this.inFlight = null;
        this.timer = null;
        this.stopped = false;
        this.backoffMs = this.interval;
        this.retryAtTick = 0; // no connect attempt before this tick (backoff)
        this.since = new Date();
        this.counters = emptyCounters();
    }

    /** Start ticking: the first tick after `phaseMs`. */
    start() {
        // the monotonic clock: a wall-clock step (NTP, DST mistakes) must not stall or burst the schedule
        this.startMs = performance.now() + this.phaseMs;
        this.tickNo = 0;
        this.arm();
    }

    arm() {
        const due = this.startMs + this.tickNo * this.interval;
        this.timer = setTimeout(() => this.tick(due), Math.max(0, due - performance.now()));
    }

    tick(due) {
        if (this.stopped) return;
        const now = performance.now();
        const c = this.counters;
        c.late_ms_max = Math.max(c.late_ms_max || 0, Math.round(now - due));
        const thisTick = this.tickNo;
        // The next tick is the first one still ahead: after a stall of the event loop the
        // ticks missed are not fired in a burst.
        this.tickNo = Math.max(thisTick + 1, Math.floor((now - this.startMs) / this.interval) + 1);
        this.arm();
        if (this.inFlight) {
            c.overflows += 1;
            return;
        }
        if (thisTick < this.retryAtTick) {
            // Backing off: a tick without a connect attempt still counts as a failed poll,
            // so that the device goes offline on time.
            c.polls += 1;
            this.failed('connection', null);
            return;
        }
        this.inFlight = this.poll(thisTick).finally(() => { this.inFlight = null; });
    }

    async poll(thisTick) {
        this.counters.polls += 1;
        let reading = false;
        try {
            if (!this.conn || !this.conn.isOpen) {
                const d = this.device;
                this.conn = this.connect({ host: d.host, port: d.port, unitId: d.unit_id, timeoutMs: this.timeoutMs });
                await this.conn.open();
            }
            reading = true;
            const startedAt = Date.now(); // the readings' time: when the first request went out
            const values = [];
            for (const block of this.plan) {
                // eslint-disable-next-line no-await-in-loop
                values.push(...decodeBlock(block, await this.conn.read(block)));
            }
            if (!this.stopped) this.succeeded(startedAt, values);
        } catch (err) {
            if (this.stopped) return;
            const kind = classifyError(err);
            this.failed(kind, err);
            // garbage or a timeout may leave answers in the stream: start afresh
            if (kind !== 'exception' && this.conn) {
                this.conn.close();
                this.conn = null;
            }
            if (kind === 'connection' && !reading) {
                this.retryAtTick = thisTick + Math.ceil(this.backoffMs / this.interval);
                this.backoffMs = Math.min(this.backoffMs * 2, this.backoffMaxMs);
            }
        }
    }

    succeeded(startedAt, values) {
        const c = this.counters;
        c.ok += 1;
        c.consecutive_failures = 0;
        c.last_ok_at = new Date(startedAt);
        this.backoffMs = this.interval;
        const msgs = [];
        if (this.status !== 'online') msgs.push(this.statusMessage('online'));
        for (const { attr, value } of values) {
            if (value === null) {
                this.onBadValue(attr.name);
                continue;
            }
            const payload = { value, ts: startedAt };
            if (attr.unit) payload.unit = attr.unit;
            msgs.push({ topic: `${this.base}/${attr.name}`, payload: JSON.stringify(payload), qos: 1, retain: false });
        }
        this.publish(msgs);
    }

    failed(kind, err) {
        const c = this.counters;
        c[COUNTER[kind]] += 1;
        c.consecutive_failures += 1;
        if (err) {
            c.last_error = `${kind}: ${err.message}`;
            c.last_error_at = new Date();
        }
        if (c.consecutive_failures >= this.offlineAfter && this.status !== 'offline') {
            this.publish([this.statusMessage('offline')]);
        }
    }

    statusMessage(status) {
        this.status = status;
        return { topic: `${this.base}/status`, payload: status, qos: 1, retain: true };
    }

    /** The counters for modbus_poll_stats and octopus/stats/modbus. */
    snapshot() {
        return { since: this.since, status: this.status, ...this.counters };
    }

    /** Stop ticking and drop the connection; resolves once a poll in flight has ended. */
    stop() {
        this.stopped = true;
        clearTimeout(this.timer);
        if (this.conn) this.conn.close();
        this.conn = null;
        return Promise.resolve(this.inFlight).catch(() => {});
    }
}

module.exports = { DevicePoller, emptyCounters };
