'use strict';
/**
 * All Modbus polling of one Node-RED worker: the polling lock, the device list kept in step
 * with modbus_devices, one DevicePoller per enabled device, and the stats. Plain module: no
 * Node-RED.
 *
 * Only the worker holding the PostgreSQL session lock polls: two workers with the same flows
 * would otherwise both poll and publish every reading twice. The lock lives on one dedicated
 * connection (lib/worker-lock.js), which also carries the refresh and the stats: each refresh
 * is then a check that the lock is still ours, and polling stops as soon as that connection
 * fails or hangs.
 */

const { DevicePoller, emptyCounters } = require('./modbus-poller');
const { planReads } = require('./modbus-plan');
const { schedule } = require('./schedule');
const { statsTopic } = require('./topic');
const { WorkerLock } = require('./worker-lock');
const {
    LOCK_KEY, deviceKey, diffDevices, writeStats, loadDevices,
} = require('./modbus-devices');

// Requests time out before the next tick, so that a silent device counts timeouts on every
// tick rather than alternate timeouts and overflows (and goes offline on time).
const TIMEOUT_SHARE_OF_INTERVAL = 0.8;
const GOLDEN_RATIO = 0.6180339887;

/** The request timeout for a device polled every `intervalMs`: never past the next tick. */
function effectiveTimeout(timeoutMs, intervalMs) {
    return Math.max(1, Math.min(timeoutMs, Math.floor(intervalMs * TIMEOUT_SHARE_OF_INTERVAL)));
}

/** A fixed offset of a device's ticks within its interval, spreading devices evenly by id. */
function phaseOf(id, intervalMs) {
    return Math.floor(((id * GOLDEN_RATIO) % 1) * intervalMs);
}

class ModbusFleet {
    /**
     * @param {object} opts
     * @param {() => object} opts.getPool  a pg.Pool
     * @param {object} opts.profiles  a ProfileStore
     * @param {string} opts.worker  this worker's name, for the stats
     * @param {object} opts.settings  {refreshMs, statsIntervalMs, timeoutMs, backoffMaxMs, offlineAfter}
     * @param {(msgs: object[]) => void} opts.publish  MQTT messages out
     * @param {(event: object) => void} [opts.onEvent]  what the node logs: {type, ...}
     * @param {number} [opts.lockKey]
     */
    constructor(opts) {
        Object.assign(this, { lockKey: LOCK_KEY, onEvent: () => {}, ...opts });
        this.entries = new Map(); // device id → {key, row, poller, problem, since}
        // a statement on it taking more than 5 s (the lock's default) means it is stuck
        this.lock = new WorkerLock({ getPool: this.getPool, key: this.lockKey, onLost: (error) => this.lockLost(error) });
        this.state = 'starting'; // 'polling' | 'standby' | 'database unreachable' | 'stopped'
        this.stopped = false;
        this.stopping = new Set(); // pollers stopped, their last poll not yet ended
        this.statsTopic = statsTopic('modbus', this.worker);
    }

    /** Refresh now and every refreshMs (never overlapping); stats every statsIntervalMs. */
    start() {
        this.refreshJob = schedule(() => this.refresh(), this.settings.refreshMs, {
            onError: (error) => this.onEvent({ type: 'refresh-failed', error }),
        });
        this.statsTimer = setInterval(() => this.flushStats(), this.settings.statsIntervalMs);
    }

    setState(state, error = null) {
        if (state !== this.state) this.onEvent({ type: 'state', state, error });
        this.state = state;
    }

    /** Take the lock if needed: true if this worker holds it. */
    async takeLock() {
        if (this.lock.held) return true;
        let got;
        try {
            got = await this.lock.acquire();
        } catch (error) {
            this.setState('database unreachable', error);
            return false;
        }
        if (got === 'held') this.setState('polling');
        else if (!this.stopped) this.setState('standby');
        return got === 'held';
    }

    /** The lock connection failed: stop polling at once (another worker may take over). */
    lockLost(error) {
        for (const id of [...this.entries.keys()]) this.stopEntry(id, false);
        if (this.stopped) return;
        this.setState('database unreachable', error);
        this.onEvent({ type: 'lock-lost', error });
    }

    /** Take the lock if needed, read the device list and start, restart or stop pollers. */
    async refresh() {
        if (!(await this.takeLock())) return;
        let rows;
        try {
            rows = await loadDevices(this.lock);
        } catch (error) {
            if (!this.lock.held) return; // the connection failed: lockLost() has said so
            this.onEvent({ type: 'refresh-failed', error }); // the pollers go on with the list they have
            return;
        }
        const profiles = new Map();
        for (const name of new Set(rows.map((r) => r.profile))) {
            // eslint-disable-next-line no-await-in-loop
            profiles.set(name, await this.profiles.get(name));
        }
        if (this.stopped || !this.lock.held) return;
        const wanted = new Map(rows.map((r) => [r.id, deviceKey(r, profiles.get(r.profile).signature)]));
        const running = new Map([...this.entries].map(([id, e]) => [id, e.key]));
        const { start, restart, stop } = diffDevices(running, wanted);
        const byId = new Map(rows.map((r) => [r.id, r]));
        for (const id of stop) this.stopEntry(id, true);
        for (const id of restart) {
            const old = this.entries.get(id);
            const row = byId.get(id);
            const sameTopic = ['site', 'room', 'name'].every((f) => old.row[f] === row[f]);
            const status = old.poller ? old.poller.status : null;
            this.stopEntry(id, !sameTopic);
            this.startEntry(row, wanted.get(id), profiles.get(row.profile), sameTopic ? status : null);
        }
        for (const id of start) this.startEntry(byId.get(id), wanted.get(id), profiles.get(byId.get(id).profile), null);
    }

    startEntry(row, key, { profile, problem }, status) {
        const entry = { key, row, poller: null, problem, since: new Date() };
        this.entries.set(row.id, entry);
        if (!profile) {
            this.onEvent({ type: 'bad-profile', device: row, problem });
            return;
        }
        entry.poller = new DevicePoller({
            device: row,
            plan: planReads(profile.attributes),
            timeoutMs: effectiveTimeout(this.settings.timeoutMs, row.poll_interval_ms),
            backoffMaxMs: this.settings.backoffMaxMs,
            offlineAfter: this.settings.offlineAfter,
            phaseMs: phaseOf(row.id, row.poll_interval_ms),
            status,
            publish: this.publish,
            onBadValue: (attribute) => this.onEvent({ type: 'bad-value', device: row, attribute }),
        });
        entry.poller.start();
    }

    /** Stop a device's poller; `goodbye`: its topic is no longer polled, so say `offline`. */
    stopEntry(id, goodbye) {
        const entry = this.entries.get(id);
        this.entries.delete(id);
        if (!entry || !entry.poller) return;
        const stopped = entry.poller.stop();
        this.stopping.add(stopped);
        stopped.then(() => this.stopping.delete(stopped));
        if (goodbye && entry.poller.status === 'online') {
            this.publish([{ topic: `${entry.poller.base}/status`, payload: 'offline', qos: 1, retain: true }]);
        }
    }

    /** One row per device: the row's identity and its counters (a device not polled: the reason). */
    statsRows() {
        return [...this.entries.values()].map(({ row, poller, problem, since }) => ({
            device_id: row.id, site: row.site, room: row.room, name: row.name, host: row.host, port: row.port,
            unit_id: row.unit_id, profile: row.profile, poll_interval_ms: row.poll_interval_ms,
            ...(poller ? poller.snapshot() : { since, status: null, ...emptyCounters(), last_error: problem, last_error_at: since }),
        }));
    }

    /** Publish octopus/stats/modbus/<worker> and, holding the lock, upsert modbus_poll_stats. */
    async flushStats() {
        const rows = this.statsRows();
        const payload = { worker: this.worker, state: this.state, at: new Date(), devices: rows };
        this.publish([{ topic: this.statsTopic, payload: JSON.stringify(payload), qos: 1, retain: true }]);
        if (!this.lock.held || !rows.length || this.writingStats) return;
        this.writingStats = true;
        try {
            await writeStats(this.lock, this.worker, rows);
        } catch (error) {
            if (this.lock.held) this.onEvent({ type: 'stats-failed', error }); // else lockLost() has said so
        } finally {
            this.writingStats = false;
        }
    }

    /** {state, devices, offline, badProfiles} for the node's status. */
    summary() {
        const entries = [...this.entries.values()];
        return {
            state: this.state,
            devices: entries.filter((e) => e.poller).length,
            offline: entries.filter((e) => e.poller && e.poller.status === 'offline').length,
            badProfiles: entries.filter((e) => !e.poller).length,
        };
    }

    /** Stop every poller and timer, give the lock back; resolves when all is closed. */
    async stop() {
        this.stopped = true;
        const refreshing = this.refreshJob ? this.refreshJob.stop() : null; // a refresh running ends on its own
        clearInterval(this.statsTimer);
        for (const id of [...this.entries.keys()]) this.stopEntry(id, false);
        await this.lock.release();
        this.state = 'stopped';
        await Promise.all([refreshing, ...this.stopping]);
    }
}

module.exports = { ModbusFleet, effectiveTimeout, phaseOf };
