'use strict';
/**
 * The alerts of one Node-RED worker: the lock that lets one worker evaluate, the rules and
 * channels kept in step with the database, and the engine (lib/alerts-engine.js) that
 * evaluates them. Plain module: no Node-RED.
 *
 * Only the worker holding the PostgreSQL session lock evaluates: two workers with the same
 * flow would otherwise both raise and notify. The lock lives on one dedicated connection
 * (lib/worker-lock.js), which also carries every read and write: each refresh is a check
 * that the lock is still ours, and when that connection fails the engine stops at once and
 * its state is dropped. Whoever takes the lock next (this worker again, or another) starts
 * from the database: the open alerts, the last readings and statuses.
 *
 * The database itself is watched without it (lib/alerts-outage.js): the failures of the lock
 * connection (an error, its end, a statement past lockTimeoutMs) and of each attempt to take
 * the lock again (a connection refused or timed out) are the signals; any answer (the lock
 * taken, or held by another worker) ends the outage. Only a worker that held the lock, or
 * has never heard of a holder, raises the alert: a standby worker knows that someone else
 * held it, and that one says it (with several workers started while the database is down,
 * each says it: none of them knows of another).
 */

const os = require('os');

const { WorkerLock } = require('./worker-lock');
const { schedule } = require('./schedule');
const { AlertEngine, systemClock } = require('./alerts-engine');
const { DatabaseWatch } = require('./alerts-outage');
const {
    LOCK_KEY, raiseAlert, clearAlert, addEvents, recordOutage, loadRules, loadChannels, loadOpenAlerts, loadStatuses, loadStartingPoint,
} = require('./alerts-store');

/** An octopus/live payload as it comes from an mqtt in node (parsed or not) → the object, or null. */
function parseLive(payload) {
    let live = payload;
    if (typeof live === 'string' || Buffer.isBuffer(live)) {
        try {
            live = JSON.parse(live.toString());
        } catch (e) {
            return null;
        }
    }
    if (!live || typeof live !== 'object' || (!Array.isArray(live.readings) && !Array.isArray(live.statuses))) return null;
    return live;
}

class AlertService {
    /**
     * @param {object} opts
     * @param {() => object} opts.getPool  a pg.Pool
     * @param {object} opts.settings  {refreshMs, lockTimeoutMs?, dbDownAfterMs, ...the engine's settings (alerts-settings.js engineSettings)}
     * @param {(output: number, msg: object) => void} opts.publish  see AlertEngine
     * @param {(event: object) => void} [opts.onEvent]  what the node logs: {type, ...}
     * @param {object} [opts.clock]  the engine's clock (tests)
     * @param {number} [opts.lockKey]
     * @param {string} [opts.worker]  this worker's name in the database alert's history
     */
    constructor({
        getPool, settings, publish, onEvent = () => {}, clock = systemClock, lockKey = LOCK_KEY, worker = os.hostname(),
    }) {
        Object.assign(this, { getPool, settings, publish, onEvent, clock });
        this.lock = new WorkerLock({
            getPool, key: lockKey, timeoutMs: settings.lockTimeoutMs || 5000, onLost: (error) => this.lockLost(error),
        });
        this.engine = null;
        this.state = 'starting'; // 'evaluating' | 'standby' | 'database unreachable' | 'failing' | 'stopped'
        this.role = null; // what this worker last learnt of the lock: 'holder' | 'standby'; null: nothing yet
        this.stopped = false;
        this.watch = new DatabaseWatch({
            publish, clock, onEvent, worker, settings: { dbDownAfterMs: 30000, ...settings },
        });
        const query = (text, values) => this.lock.query(text, values);
        this.query = query;
        this.store = {
            raise: (a) => raiseAlert(query, a),
            clear: (id, value, detail) => clearAlert(query, id, value, detail),
            events: (id, events) => addEvents(query, id, events),
        };
    }

    /** Refresh now and every refreshMs (never overlapping). */
    start() {
        this.refreshJob = schedule(() => this.refresh(), this.settings.refreshMs, {
            onError: (error) => this.onEvent({ type: 'refresh-failed', error }),
        });
    }

    setState(state, error = null) {
        if (state !== this.state) this.onEvent({ type: 'state', state, error });
        this.state = state;
    }

    /** Take the lock if needed; read rules and channels; start the engine or bring it in step. */
    async refresh() {
        if (!this.lock.held) {
            let got;
            try {
                got = await this.lock.acquire();
            } catch (error) {
                this.setState('database unreachable', error);
                this.unreachable(error);
                return;
            }
            await this.reachable(got);
            this.role = got === 'held' ? 'holder' : 'standby';
            if (got !== 'held') {
                this.setState('standby');
                return;
            }
        }
        try {
            const rules = await loadRules(this.query);
            const channels = await loadChannels(this.query);
            this.watch.setChannels(channels); // kept for the database alert: all there is while it is down
            if (!this.engine) {
                const openAlerts = await loadOpenAlerts(this.query);
                const start = await loadStartingPoint(this.query);
                if (this.stopped || !this.lock.held) return;
                this.engine = new AlertEngine({
                    store: this.store, publish: this.publish, settings: this.settings, clock: this.clock, onEvent: this.onEvent,
                });
                this.engine.setChannels(channels);
                this.engine.applyRules(rules, start, openAlerts);
                this.setState('evaluating');
                return;
            }
            const start = this.engine.needsStartingPoint(rules) ? await loadStartingPoint(this.query) : null;
            if (this.stopped || !this.engine) return;
            this.engine.setChannels(channels);
            this.engine.applyRules(rules, start);
            this.engine.prune();
            // catch up with a status octopus/live lost (QoS 0): see AlertEngine.statuses()
            if (!start && this.engine.watchesStatuses()) {
                const statuses = await loadStatuses(this.query);
                if (this.engine) this.engine.statuses(statuses);
            }
        } catch (error) {
            if (!this.lock.held) return; // the connection failed: lockLost() has said so
            // a refused statement (e.g. the migration not applied yet): the engine, if
            // running, goes on with the rules it has
            if (!this.engine) this.setState('failing', error);
            this.onEvent({ type: 'refresh-failed', error });
        }
    }

    /** The lock connection failed: stop evaluating at once (another worker may take over). */
    lockLost(error) {
        if (this.engine) this.engine.stop();
        this.engine = null;
        if (this.stopped) return;
        this.setState('database unreachable', error);
        this.onEvent({ type: 'lock-lost', error });
        this.unreachable(error);
    }

    /** A sign that the database is down, for the database alert: unless another worker is known to hold the lock. */
    unreachable(error) {
        if (this.stopped || this.role === 'standby') return;
        this.watch.failed(error, this.role === 'holder');
    }

    /**
     * The database answered (`got`: 'held' or 'standby'): an outage this worker raised is
     * cleared, and recorded by it if it holds the lock now or held it when the outage began
     * (a worker that only raised it for never having heard of a holder leaves that to the
     * one that takes the lock).
     */
    async reachable(got) {
        const { outage } = this.watch;
        if (!outage) return;
        let query = null;
        if (got === 'held') query = this.query;
        else if (outage.asHolder) query = (text, values) => this.getPool().query(text, values); // another worker has the lock now
        await this.watch.answered(query && ((alert, events) => recordOutage(query, alert, events)));
    }

    /**
     * An octopus/live payload ({readings, statuses}: an object, or its JSON as a string or
     * Buffer); dropped unread unless this worker evaluates. False if it is not such a payload.
     */
    input(payload) {
        if (!this.engine) return true;
        const live = parseLive(payload);
        if (!live) return false;
        this.engine.live(live);
        return true;
    }

    /** {state, rules, active, databaseAlert} for the node's status. */
    summary() {
        return {
            state: this.state, ...(this.engine ? this.engine.summary() : { rules: 0, active: 0 }), databaseAlert: this.watch.raised,
        };
    }

    /** Stop timers, finish the writes decided, give the lock back; resolves when all is closed. */
    async stop() {
        this.stopped = true;
        const refreshing = this.refreshJob ? this.refreshJob.stop() : null; // a refresh running ends on its own
        if (this.engine) await this.engine.stop();
        this.engine = null;
        await this.lock.release();
        this.state = 'stopped';
        await refreshing;
    }
}

module.exports = { AlertService, parseLive };
