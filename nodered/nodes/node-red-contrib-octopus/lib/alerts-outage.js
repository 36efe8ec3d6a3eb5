'use strict';
/**
 * The database watched without the database. The alert engine keeps its alerts in
 * PostgreSQL, so an alert about PostgreSQL itself has to go another way: when the service
 * (lib/alerts-service.js) reports that the database does not answer, and it still does not
 * answer `dbDownAfterMs` later, this raises the platform alert "database unreachable" from
 * memory alone: its retained state on octopus/alerts/platform/octopus/platform/database/reachable
 * and notifications to the channels last read for severity critical (the usual rate limit).
 * When the database answers again it clears it (the state, and the clears to the channels
 * that got the raise) and has the outage recorded as an ordinary alert, already cleared,
 * with its events. An outage shorter than `dbDownAfterMs` says nothing and leaves nothing.
 * Plain module: no Node-RED, no database of its own.
 */

const { alertTopic, stateMessage, notificationMessage } = require('./alerts-messages');

// The alert's key: the pseudo device octopus/platform/database (lib/alerts-platform.js names
// the workers the same way), attribute `reachable`. No rule: the rule level of its topic is `platform`.
const DATABASE_ALERT = {
    rule_name: 'database unreachable', site: 'octopus', room: 'platform', device: 'database', attribute: 'reachable', severity: 'critical',
};
const PLATFORM_RULE = 'platform';
const DATABASE_ALERT_TOPIC = alertTopic(PLATFORM_RULE, DATABASE_ALERT);

const iso = (t) => new Date(t).toISOString();
const errorText = (error) => String((error && error.message) || error || 'no answer').replace(/\s+/g, ' ').trim().slice(0, 300);
const seconds = (ms) => `${Math.round(ms / 1000)} s`;

class DatabaseWatch {
    /**
     * @param {object} opts
     * @param {(output: number, msg: object) => void} opts.publish  as the engine's: 0 MQTT, 1 e-mail, 2 webhook
     * @param {object} opts.settings  {dbDownAfterMs, notifyMinIntervalMs, emailFrom, portalUrl}
     * @param {object} opts.clock  {now()}
     * @param {(event: object) => void} [opts.onEvent]  {type: 'database-alert', state: 'raised' | 'cleared', ...}
     * @param {string} [opts.worker]  who noticed, for the alert's history
     */
    constructor({ publish, settings, clock, onEvent = () => {}, worker = 'this worker' }) {
        Object.assign(this, { publish, settings, clock, onEvent, worker });
        this.channels = []; // the enabled channels as last read: all there is while the database is down
        this.sentAt = new Map(); // channel id → when it last got a raise of this alert (the rate limit)
        this.outage = null; // {since, error, asHolder, alert (once raised), told: channel ids, events}
    }

    /** The enabled notification channels, as read at the last refresh. */
    setChannels(channels) {
        this.channels = channels;
    }

    /** Whether the alert is raised now. */
    get raised() {
        return Boolean(this.outage && this.outage.alert);
    }

    /**
     * The database did not answer (a connection failed or ended, a statement took too long,
     * a connection could not be made). The first failure starts the outage; a failure
     * `dbDownAfterMs` or more after it, with no answer in between, raises the alert.
     * `asHolder`: this worker held the lock when the outage started (see answered()).
     */
    failed(error, asHolder) {
        const now = this.clock.now();
        if (!this.outage) this.outage = { since: now, error, asHolder, alert: null, told: new Set(), events: [] };
        const o = this.outage;
        o.error = error;
        if (!o.alert && now - o.since >= this.settings.dbDownAfterMs) this.raise(o, now);
    }

    raise(o, now) {
        o.alert = {
            id: null,
            rule_id: null,
            ...DATABASE_ALERT,
            message: `PostgreSQL unreachable since ${iso(o.since)}: ${errorText(o.error)}`,
            raised_at: new Date(o.since),
            raised_value: 'false',
            acked_at: null,
            acked_by: null,
            cleared_at: null,
            cleared_value: null,
            flapping: false,
        };
        o.events.push({
            at: new Date(o.since), kind: 'raised', value: 'false',
            detail: `raised without the database by ${this.worker} at ${iso(now)}, after ${seconds(now - o.since)} without an answer`,
        });
        this.publish(0, stateMessage(PLATFORM_RULE, o.alert));
        const told = this.send(o.alert, 'raised', this.decide(o, 'raised', now));
        this.onEvent({ type: 'database-alert', state: 'raised', alert: o.alert, notified: told });
    }

    /**
     * The channels taking critical alerts that get `event` of this outage, as the engine
     * decides for any alert: a raise at most once per notifyMinIntervalMs per channel, a clear
     * if and only if the channel got the raise. The 'notified' and 'suppressed' events are
     * added to the outage's history.
     */
    decide(o, event, now) {
        const interval = this.settings.notifyMinIntervalMs;
        const chosen = [];
        for (const channel of this.channels) {
            if (!channel.severities.includes(DATABASE_ALERT.severity)) continue;
            let held = null;
            if (event === 'cleared') {
                if (!o.told.has(channel.id)) held = 'its raise was not notified (rate limit)';
            } else if (this.sentAt.has(channel.id) && now - this.sentAt.get(channel.id) < interval) {
                held = `rate limit: at most one notification per ${interval / 1000} s`;
            }
            if (held) {
                o.events.push({ at: new Date(now), kind: 'suppressed', actor: channel.name, detail: `${event}: ${held}` });
                continue;
            }
            if (event === 'raised') {
                this.sentAt.set(channel.id, now);
                o.told.add(channel.id);
            }
            o.events.push({ at: new Date(now), kind: 'notified', actor: channel.name, detail: `${channel.kind}, ${event}` });
            chosen.push(channel);
        }
        return chosen;
    }

    /** Send `event` of `alert` to `channels`: how many. */
    send(alert, event, channels) {
        for (const channel of channels) {
            const { output, msg } = notificationMessage(channel, alert, event, this.settings);
            this.publish(output, msg);
        }
        return channels.length;
    }

    /**
     * The database answered: the outage, if any, is over. If the alert was raised, the outage
     * is recorded through `record(alert, events)` (a promise of the stored row; null: this
     * worker does not record it, see lib/alerts-service.js), then the cleared state (with the
     * stored id) is published and the clears are sent. A record that fails is reported, and
     * the clear goes out all the same (id null). Resolves to the stored row, or null.
     */
    async answered(record) {
        const o = this.outage;
        this.outage = null;
        if (!o || !o.alert) return null; // a blip: nothing said, nothing kept
        const now = this.clock.now();
        const cleared = { ...o.alert, cleared_at: new Date(now), cleared_value: 'true' };
        o.events.push({
            at: new Date(now), kind: 'cleared', value: 'true', detail: `answered again after ${seconds(now - o.since)}`,
        });
        // decided before recording, so that the history holds them; sent after, with the id
        const channels = this.decide(o, 'cleared', now);
        let row = null;
        let error = null;
        if (record) {
            try {
                row = await record(cleared, o.events);
            } catch (e) {
                error = e;
            }
        }
        const alert = row || cleared;
        this.publish(0, stateMessage(PLATFORM_RULE, alert));
        const told = this.send(alert, 'cleared', channels);
        this.onEvent({
            type: 'database-alert', state: 'cleared', alert, notified: told, recorded: row !== null, recordedHere: Boolean(record), error,
        });
        return row;
    }
}

module.exports = { DatabaseWatch, DATABASE_ALERT, DATABASE_ALERT_TOPIC, PLATFORM_RULE };
