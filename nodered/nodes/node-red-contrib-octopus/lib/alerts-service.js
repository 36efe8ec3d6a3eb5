'use strict';
/**
 * The alerts of one Node-RED worker: the lock that lets one worker evaluate, the rules and
 * channels kept in step with the database, and the engine (lib/alerts-engine.js) that
 * evaluates them. Plain module: no Node-RED.
 *
 * Only the worker holding the PostgreSQL session lock evaluates: two workers with the same
 * flow would otherwise both raise and notify. The lock lives on one dedicated connection
 * (lib/alerts-lock.js), which also carries every read and write: each refresh is a check
 * that the lock is still ours, and when that connection fails the engine stops at once and
 * its state is dropped. Whoever takes the lock next (this worker again, or another) starts
 * from the database: the open alerts, the last readings and statuses.
 */

const { WorkerLock } = require('./alerts-lock');
const { AlertEngine, systemClock } = require('./alerts-engine');
const {
    LOCK_KEY, raiseAlert, clearAlert, addEvents, loadRules, loadChannels, loadOpenAlerts, loadStatuses, loadStartingPoint,
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
     * @param {object} opts.settings  {refreshMs, lockTimeoutMs?, ...the engine's settings (alerts-settings.js engineSettings)}
     * @param {(output: number, msg: object) => void} opts.publish  see AlertEngine
     * @param {(event: object) => void} [opts.onEvent]  what the node logs: {type, ...}
     * @param {object} [opts.clock]  the engine's clock (tests)
     * @param {number} [opts.lockKey]
     */
    constructor({ getPool, settings, publish, onEvent = () => {}, clock = systemClock, lockKey = LOCK_KEY }) {
        Object.assign(this, { settings, publish, onEvent, clock });
        this.lock = new WorkerLock({
            getPool, key: lockKey, timeoutMs: settings.lockTimeoutMs || 5000, onLost: (error) => this.lockLost(error),
        });
        this.engine = null;
        this.state = 'starting'; // 'evaluating' | 'standby' | 'database unreachable' | 'failing' | 'stopped'
        this.stopped = false;
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
        const loop = () => {
            this.refreshing = this.refresh()
                .catch((error) => this.onEvent({ type: 'refresh-failed', error }))
                .then(() => { if (!this.stopped) this.refreshTimer = setTimeout(loop, this.settings.refreshMs); });
        };
        loop();
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
                return;
            }
            if (got !== 'held') {
                this.setState('standby');
                return;
            }
        }
        try {
            const rules = await loadRules(this.query);
            const channels = await loadChannels(this.query);
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

    /** {state, rules, active} for the node's status. */
    summary() {
        return { state: this.state, ...(this.engine ? this.engine.summary() : { rules: 0, active: 0 }) };
    }

    /** Stop timers, finish the writes decided, give the lock back; resolves when all is closed. */
    async stop() {
        this.stopped = true;
        clearTimeout(this.refreshTimer);
        if (this.engine) await this.engine.stop();
        this.engine = null;
        await this.lock.release();
        this.state = 'stopped';
        await this.refreshing;
    }
}

module.exports = { AlertService, parseLive };
