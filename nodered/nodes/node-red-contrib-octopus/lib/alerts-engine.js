'use strict';
/**
 * The alert engine: rules evaluated on readings and statuses as they arrive, with delays,
 * hysteresis, staleness, flapping and rate-limited notifications. Plain module: no
 * Node-RED, no database — it is handed a clock (so that tests run on a fake one), a store
 * (the writes, lib/alerts-store.js through the lock connection) and a publish function.
 *
 * Every rule watches keys: one (site, room, device, attribute) each ('status' for offline
 * rules). A key is active while its alert is open. Each kind of rule turns what arrives
 * into one observation (does the raise condition hold, does the clear condition hold) and
 * one state machine does the rest:
 *   - inactive: a raise observation starts a pending raise (due on_delay after it began);
 *     any other observation cancels it. The pending raise, once due, raises.
 *   - active: a clear observation starts a pending clear (due off_delay after it began); a
 *     raise observation cancels it; an observation meeting neither (the deadband of a
 *     threshold rule) changes nothing. The pending clear, once due, clears.
 * threshold: each numeric reading is an observation (raise: the condition; clear: back past
 *   the limit by the hysteresis). offline: `offline` raises, `online` clears. stale: no
 *   reading for stale_after_s is a raise observation from that moment; a reading is a clear.
 *
 * Time is the arrival time of what arrives (the engine's clock), never the reading's `ts`:
 * a device with a wrong clock or a backlog delivered late is judged by when it is heard.
 *
 * Writes go out one at a time, in the order they were decided, so that a clear always
 * reaches the database after the raise it clears. A raise or clear is decided in memory
 * first: a write that fails does not make the engine raise the same alert again.
 */

const { prepareRule, ruleMatches, raiseHolds, clearHolds, numericValue } = require('./alerts-rules');
const { renderMessage, formatValue, stateMessage, notificationMessage } = require('./alerts-messages');

// Keys whose matching rules are remembered; past this the memo starts again (a bound, not a tuning knob).
const MATCH_MEMO_MAX = 100000;
// setTimeout's longest delay (~24.8 days); a longer one would fire at once.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The clock of real life: what the engine is given unless a test gives it another. */
const systemClock = {
    now: () => Date.now(),
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (t) => clearTimeout(t),
};

const keyOf = (site, room, device, attribute) => `${site}/${room}/${device}/${attribute}`;
const ms = (t) => (t instanceof Date ? t.getTime() : new Date(t).getTime());

class AlertEngine {
    /**
     * @param {object} opts
     * @param {object} opts.store  {raise(a), clear(id, value, detail), events(id, events)}: promises
     *   (lib/alerts-store.js's raiseAlert, clearAlert, addEvents); raise/clear resolve to null when not written
     * @param {(output: number, msg: object) => void} opts.publish  0: MQTT (states, mqtt channels), 1: e-mail, 2: webhook
     * @param {object} opts.settings  {notifyMinIntervalMs, flapCount, flapWindowMs, emailFrom, portalUrl}
     * @param {object} [opts.clock]  {now(), setTimeout(fn, ms), clearTimeout(t)}
     * @param {(event: object) => void} [opts.onEvent]  what the node logs: {type, ...}
     */
    constructor({ store, publish, settings, clock = systemClock, onEvent = () => {} }) {
        Object.assign(this, { store, publish, settings, clock, onEvent });
        this.rules = new Map(); // rule id → {rule, keys: Map key → KeyState}
        this.channels = [];
        this.flaps = new Map(); // rule id|key → {raises: [ms], lastRaiseAt, flapping}
        this.sent = new Map(); // rule id|key|channel id → {sentAt (of a raise), suppressedAt}
        this.told = new Map(); // open alert id → channel ids told of its raise
        this.memo = new Map(); // key → rule states that may watch it
        this.badRules = new Map(); // rule id → signature warned about
        this.writes = Promise.resolve();
        this.timers = new Set();
        this.stopped = false;
    }

    // --- rules and channels -------------------------------------------------------------

    /** The enabled notification channels (notification_channels rows). */
    setChannels(channels) {
        this.channels = channels;
    }

    /** Whether applying `rows` starts a stale or offline rule (new or changed): it needs the starting point. */
    needsStartingPoint(rows) {
        return rows.some((row) => row.enabled && (row.kind === 'stale' || row.kind === 'offline')
            && (!this.rules.has(row.id) || this.rules.get(row.id).rule.signature !== prepareRule(row).rule?.signature));
    }

    /**
     * Bring the rules in step with `rows` (every alert_rules row): new rules start, changed
     * ones start again (their open alerts stay open until the new rule clears them),
     * removed, disabled or unusable ones clear their open alerts. `start`: the last readings
     * and statuses (lib/alerts-store.js loadStartingPoint), needed when a stale or offline
     * rule starts; `openAlerts`: when evaluation starts, the alerts left open.
     */
    applyRules(rows, start = null, openAlerts = []) {
        const wanted = new Map();
        const gone = new Map(); // rule id → why its alerts clear
        for (const row of rows) {
            if (!row.enabled) {
                gone.set(row.id, 'rule disabled');
                continue;
            }
            const { rule, problem } = prepareRule(row);
            if (rule) {
                wanted.set(row.id, rule);
                this.badRules.delete(row.id);
            } else {
                gone.set(row.id, `rule not evaluated: ${problem}`);
                const signature = JSON.stringify(row);
                if (this.badRules.get(row.id) !== signature) this.onEvent({ type: 'bad-rule', rule: row, problem });
                this.badRules.set(row.id, signature);
            }
        }
        let changed = false;
        for (const [id, rs] of this.rules) {
            if (wanted.has(id)) continue;
            this.dropRule(rs, gone.get(id) || 'rule removed');
            changed = true;
        }
        for (const [id, rule] of wanted) {
            const rs = this.rules.get(id);
            if (rs && rs.rule.signature === rule.signature) continue;
            changed = true;
            if (rs) this.restartRule(rs, rule);
            else this.rules.set(id, { rule, keys: new Map() });
        }
        if (changed) this.memo.clear();
        for (const alert of openAlerts) this.adopt(alert, wanted, gone);
        if (start) {
            for (const [id, rule] of wanted) {
                const rs = this.rules.get(id);
                if (rs.armed !== rule.signature) this.arm(rs, start);
            }
        }
    }

    /** An alert left open when evaluation starts: its key is active, or it clears if its rule is gone. */
    adopt(alert, wanted, gone) {
        const rs = alert.rule_id === null ? null : this.rules.get(alert.rule_id);
        const topic = `${alert.site}/${alert.room}/${alert.device}`;
        if (!rs || !wanted.has(alert.rule_id) || !ruleMatches(rs.rule, topic, alert.attribute)) {
            const why = !rs ? (gone.get(alert.rule_id) || 'rule removed') : 'rule changed';
            this.write(async () => {
                const row = await this.store.clear(alert.id, null, why);
                // a deleted rule's id is gone from the row (ON DELETE SET NULL), and with it the topic
                if (row && !this.stopped && alert.rule_id !== null) this.publish(0, stateMessage(alert.rule_id, row));
            });
            return;
        }
        const ks = this.keyState(rs, alert.site, alert.room, alert.device, alert.attribute);
        ks.active = true;
        ks.alert = alert;
        if (alert.flapping) {
            const raisedAt = ms(alert.raised_at);
            this.flaps.set(`${rs.rule.id}|${ks.key}`, { raises: [raisedAt], lastRaiseAt: raisedAt, flapping: true });
        }
    }

    /** Set a rule's stale timers and offline observations from the starting point. */
    arm(rs, { attributes, statuses }) {
        rs.armed = rs.rule.signature;
        const { rule } = rs;
        if (rule.kind === 'stale') {
            for (const a of attributes) {
                if (!ruleMatches(rule, `${a.site}/${a.room}/${a.device}`, a.attribute) || !a.last_seen) continue;
                const ks = this.keyState(rs, a.site, a.room, a.device, a.attribute);
                ks.value = a.last_value;
                ks.unit = a.unit;
                this.heard(rs, ks, ms(a.last_seen));
            }
        } else if (rule.kind === 'offline') {
            this.statuses(statuses, [rs]);
        }
    }

    /** A changed rule: every key starts again, except that open alerts stay open (or clear if the rule no longer watches them). */
    restartRule(rs, rule) {
        rs.rule = rule;
        rs.armed = null;
        for (const ks of [...rs.keys.values()]) {
            this.cancel(ks, 'pendingRaise');
            this.cancel(ks, 'pendingClear');
            this.cancel(ks, 'staleTimer');
            ks.lastHeardAt = null;
            if (ks.active && ruleMatches(rule, `${ks.site}/${ks.room}/${ks.device}`, ks.attribute)) continue;
            if (ks.active) this.clear(rs, ks, null, 'rule changed', false);
            rs.keys.delete(ks.key);
        }
    }

    /** A removed rule: its timers stop and its open alerts clear with `why`. */
    dropRule(rs, why) {
        this.rules.delete(rs.rule.id);
        for (const ks of rs.keys.values()) {
            this.cancel(ks, 'pendingRaise');
            this.cancel(ks, 'pendingClear');
            this.cancel(ks, 'staleTimer');
            if (ks.active) this.clear(rs, ks, null, why, false);
        }
        const prefix = `${rs.rule.id}|`;
        for (const map of [this.flaps, this.sent]) {
            for (const k of map.keys()) if (k.startsWith(prefix)) map.delete(k);
        }
    }

    // --- what arrives -------------------------------------------------------------------

    /** An octopus/live payload: {readings: [...], statuses: [...]}. */
    live(payload) {
        if (this.stopped || !payload) return;
        const named = (x, last) => x && typeof x.site === 'string' && typeof x.room === 'string'
            && typeof x.device === 'string' && typeof x[last] === 'string';
        if (Array.isArray(payload.readings)) for (const r of payload.readings) if (named(r, 'attribute')) this.reading(r);
        if (Array.isArray(payload.statuses)) for (const s of payload.statuses) if (named(s, 'status')) this.status(s);
    }

    /** One reading {site, room, device, attribute, value, unit}. */
    reading({ site, room, device, attribute, value, unit }) {
        const key = keyOf(site, room, device, attribute);
        let watching = this.memo.get(key);
        if (!watching) {
            const topic = `${site}/${room}/${device}`;
            watching = [...this.rules.values()].filter((rs) => rs.rule.kind !== 'offline' && ruleMatches(rs.rule, topic, attribute));
            if (this.memo.size >= MATCH_MEMO_MAX) this.memo.clear();
            this.memo.set(key, watching);
        }
        if (!watching.length) return;
        const v = numericValue(value);
        for (const rs of watching) {
            if (rs.rule.kind === 'threshold') {
                if (v === null) continue; // a state string: not for threshold rules
                const raise = raiseHolds(rs.rule, v);
                const clear = clearHolds(rs.rule, v);
                // most readings of a quiet attribute change nothing: no key state for them
                if (!raise && !rs.keys.has(key)) continue;
                this.observe(rs, this.keyState(rs, site, room, device, attribute), raise, clear, value, unit);
            } else { // stale
                const ks = this.keyState(rs, site, room, device, attribute);
                this.heard(rs, ks, this.clock.now());
                this.observe(rs, ks, false, true, value, unit);
            }
        }
    }

    /** One status {site, room, device, status}, heard at `since`, for the offline rules among `rules`. */
    status({ site, room, device, status }, since = this.clock.now(), rules = this.rules.values()) {
        const topic = `${site}/${room}/${device}`;
        for (const rs of rules) {
            if (rs.rule.kind !== 'offline' || !rs.rule.matchesDevice(topic)) continue;
            const key = keyOf(site, room, device, 'status');
            if (status !== 'offline' && !rs.keys.has(key)) continue;
            this.observe(rs, this.keyState(rs, site, room, device, 'status'), status === 'offline', status === 'online', status, null, since);
        }
    }

    /**
     * The devices' last statuses as the database has them ({site, room, device, status,
     * status_at}), each as heard at its status_at. When an offline rule starts, and again at
     * every refresh: octopus/live is QoS 0, and a status lost on the way would otherwise be a
     * missed alert (or one never cleared). Observing a status already known changes nothing,
     * and a pending raise or clear keeps its time.
     */
    statuses(rows, rules = [...this.rules.values()]) {
        for (const s of rows) this.status(s, s.status_at ? ms(s.status_at) : this.clock.now(), rules);
    }

    /** Whether an offline rule is evaluated (statuses() is then worth calling). */
    watchesStatuses() {
        for (const rs of this.rules.values()) if (rs.rule.kind === 'offline') return true;
        return false;
    }

    // --- the state machine --------------------------------------------------------------

    keyState(rs, site, room, device, attribute) {
        const key = keyOf(site, room, device, attribute);
        let ks = rs.keys.get(key);
        if (!ks) {
            ks = {
                key, site, room, device, attribute, active: false, alert: null, value: null, unit: null,
                pendingRaise: null, pendingClear: null, staleTimer: null, lastHeardAt: null,
            };
            rs.keys.set(key, ks);
        }
        return ks;
    }

    /** One observation of key `ks`: does the raise condition hold, does the clear condition hold (see the top). */
    observe(rs, ks, raise, clear, value, unit, since = this.clock.now()) {
        ks.value = value;
        ks.unit = unit;
        if (!ks.active) {
            if (!raise) this.cancel(ks, 'pendingRaise');
            else if (!ks.pendingRaise) {
                ks.pendingRaise = this.at(since + rs.rule.onDelayMs, () => {
                    ks.pendingRaise = null;
                    this.raise(rs, ks);
                });
            }
        } else if (clear) {
            if (!ks.pendingClear) {
                ks.pendingClear = this.at(since + rs.rule.offDelayMs, () => {
                    ks.pendingClear = null;
                    this.clear(rs, ks, formatValue(ks.value), null, true);
                });
            }
        } else if (raise) {
            this.cancel(ks, 'pendingClear');
        }
        this.forgetIfIdle(rs, ks);
    }

    /** Stale rules: `ks` was heard at `at`; raise-observe once stale_after has passed without another. */
    heard(rs, ks, at) {
        ks.lastHeardAt = at;
        if (ks.staleTimer) return; // it checks lastHeardAt when it fires
        const check = () => {
            ks.staleTimer = null;
            const staleAt = ks.lastHeardAt + rs.rule.staleAfterMs;
            if (this.clock.now() < staleAt) ks.staleTimer = this.at(staleAt, check);
            else this.observe(rs, ks, true, false, ks.value, ks.unit, staleAt);
        };
        ks.staleTimer = this.at(at + rs.rule.staleAfterMs, check);
    }

    /**
     * Run `fn` at time `t` on the engine's clock (at once if it is past): a handle for
     * cancel(), or null if it ran. A timer that fires early (a clock step, or a delay past
     * what setTimeout takes) waits again for the rest.
     */
    at(t, fn) {
        if (t <= this.clock.now()) {
            fn();
            return null;
        }
        const handle = { timer: null };
        const wait = () => {
            const delay = t - this.clock.now();
            if (delay > 0) {
                handle.timer = this.clock.setTimeout(wait, Math.min(delay, MAX_TIMER_MS));
                return;
            }
            this.timers.delete(handle);
            fn();
        };
        this.timers.add(handle);
        wait();
        return handle;
    }

    cancel(ks, field) {
        const handle = ks[field];
        if (!handle) return;
        this.clock.clearTimeout(handle.timer);
        this.timers.delete(handle);
        ks[field] = null;
    }

    /** A threshold or offline key with nothing going on holds no memory. */
    forgetIfIdle(rs, ks) {
        if (!ks.active && !ks.pendingRaise && !ks.pendingClear && rs.rule.kind !== 'stale') rs.keys.delete(ks.key);
    }

    // --- raise, clear, notify -----------------------------------------------------------

    /** Writes one after another, in the order decided; a failure is the store's to report. */
    write(fn) {
        this.writes = this.writes.then(fn).catch((error) => this.onEvent({ type: 'write-failed', error }));
        return this.writes;
    }

    raise(rs, ks) {
        const { rule } = rs;
        const now = this.clock.now();
        ks.active = true;
        ks.alert = null;
        const flap = this.flapOf(rule.id, ks.key, now);
        flap.raises.push(now);
        flap.lastRaiseAt = now;
        const startsFlapping = !flap.flapping && flap.raises.length >= this.settings.flapCount;
        if (startsFlapping) flap.flapping = true;
        const request = {
            rule_id: rule.id,
            rule_name: rule.name,
            site: ks.site,
            room: ks.room,
            device: ks.device,
            attribute: ks.attribute,
            severity: rule.severity,
            message: renderMessage(rule.message, { rule: rule.name, ...ks, value: ks.value, severity: rule.severity }),
            raised_value: formatValue(ks.value),
            flapping: flap.flapping,
            flapping_detail: startsFlapping
                ? `raised ${flap.raises.length} times in ${this.settings.flapWindowMs / 1000} s: notifications held back until it has been quiet that long`
                : null,
        };
        this.write(async () => {
            const result = await this.store.raise(request);
            if (!result || this.stopped) return;
            ks.alert = result.alert;
            if (!result.raised) return; // already open in the database: the same alert, said once
            this.publish(0, stateMessage(rule.id, result.alert));
            if (startsFlapping) this.onEvent({ type: 'flapping', rule, alert: result.alert });
            await this.notify(rule, ks, result.alert, 'raised');
        });
    }

    /** Clear `ks`'s alert with the reading `value` (text); `detail` says why when it is not the rule's clear condition. */
    clear(rs, ks, value, detail, notify) {
        const { rule } = rs;
        ks.active = false;
        this.cancel(ks, 'pendingClear');
        this.write(async () => {
            // read now, not when decided: the raise before it in the queue has set it by now
            const { alert } = ks;
            ks.alert = null;
            if (!alert) return; // its raise was never written
            if (!notify) this.told.delete(alert.id);
            const row = await this.store.clear(alert.id, value, detail);
            if (!row || this.stopped) return;
            this.publish(0, stateMessage(rule.id, row));
            if (notify) await this.notify(rule, ks, row, 'cleared');
        });
        this.forgetIfIdle(rs, ks);
    }

    /** The flapping record of a key, its raises older than the window dropped (and the flap over if it has been quiet that long). */
    flapOf(ruleId, key, now) {
        const k = `${ruleId}|${key}`;
        let flap = this.flaps.get(k);
        if (!flap) {
            flap = { raises: [], lastRaiseAt: null, flapping: false };
            this.flaps.set(k, flap);
        }
        const window = this.settings.flapWindowMs;
        if (flap.flapping && now - flap.lastRaiseAt >= window) flap.flapping = false;
        flap.raises = flap.raises.filter((t) => now - t < window);
        return flap;
    }

    /**
     * Send `event` of `alert` to every channel taking its severity, unless the key is
     * flapping, or (a raise) the channel had a raise of this key less than
     * notifyMinIntervalMs ago, or (a clear) the channel was not told of its raise. What is
     * held back is recorded as 'suppressed', at most once per key, channel and interval.
     * So a channel hears of an alert's clear if and only if it heard of its raise: at most
     * two messages per key and interval, never a lone "cleared". (An alert left open by a
     * previous run has no such record: its clear follows the rate limit.)
     */
    async notify(rule, ks, alert, event) {
        const now = this.clock.now();
        const flap = this.flaps.get(`${rule.id}|${ks.key}`);
        const flapping = flap && flap.flapping && now - flap.lastRaiseAt < this.settings.flapWindowMs;
        const interval = this.settings.notifyMinIntervalMs;
        const told = this.told.get(alert.id); // channel ids told of this alert's raise
        this.told.delete(alert.id);
        const tell = new Set();
        const events = [];
        for (const channel of this.channels) {
            if (!channel.severities.includes(alert.severity)) continue;
            const k = `${rule.id}|${ks.key}|${channel.id}`;
            const record = this.sent.get(k) || { sentAt: null, suppressedAt: null };
            this.sent.set(k, record);
            let held = null;
            if (flapping) held = 'flapping: held back until it has been quiet for the flap window';
            else if (event === 'cleared' && told) {
                if (!told.has(channel.id)) held = 'its raise was not notified (rate limit)';
            } else if (record.sentAt !== null && now - record.sentAt < interval) {
                held = `rate limit: at most one notification per ${interval / 1000} s`;
            }
            if (!held) {
                const { output, msg } = notificationMessage(channel, alert, event, this.settings);
                this.publish(output, msg);
                if (event === 'raised') {
                    record.sentAt = now;
                    tell.add(channel.id);
                }
                events.push({ kind: 'notified', actor: channel.name, detail: `${channel.kind}, ${event}` });
            } else if (record.suppressedAt === null || now - record.suppressedAt >= interval) {
                record.suppressedAt = now;
                events.push({ kind: 'suppressed', actor: channel.name, detail: `${event}: ${held}` });
            }
        }
        if (event === 'raised') this.told.set(alert.id, tell);
        if (events.length) await this.store.events(alert.id, events);
    }

    /** Forget rate-limit records older than the interval (called now and then). */
    prune() {
        const now = this.clock.now();
        const interval = this.settings.notifyMinIntervalMs;
        for (const [k, r] of this.sent) {
            if ((r.sentAt === null || now - r.sentAt >= interval) && (r.suppressedAt === null || now - r.suppressedAt >= interval)) this.sent.delete(k);
        }
        for (const [k, f] of this.flaps) {
            if (now - f.lastRaiseAt >= this.settings.flapWindowMs) this.flaps.delete(k);
        }
    }

    /** {rules, active} for the node's status. */
    summary() {
        let active = 0;
        for (const rs of this.rules.values()) for (const ks of rs.keys.values()) if (ks.active) active += 1;
        return { rules: this.rules.size, active };
    }

    /** Stop every timer; resolves once the writes already decided are done. */
    stop() {
        this.stopped = true;
        for (const handle of this.timers) this.clock.clearTimeout(handle.timer);
        this.timers.clear();
        return this.writes;
    }
}

module.exports = { AlertEngine, systemClock };
