'use strict';
/**
 * The database side of alerts (postgres/migrations/007): the rules and channels read at
 * each refresh, the open alerts and the last readings and statuses read when evaluation
 * starts, and the writes — one statement each, parameters only. Each function takes
 * `query(text, values)`: the lock connection's, in the service. Plain module: no Node-RED.
 */

// pg_try_advisory_lock key: one Node-RED worker evaluates the rules, the others stand by.
const LOCK_KEY = 7242004;

const ALERT_COLUMNS = 'id, rule_id, rule_name, site, room, device, attribute, severity, message, ' +
    'raised_at, raised_value, acked_at, acked_by, cleared_at, cleared_value, flapping';

// All rules, disabled ones too: a rule missing from the answer was deleted, one disabled
// is still there; their open alerts are cleared with a different word.
const RULES_SQL = 'SELECT id, name, kind, devices, attribute, condition, low, high, hysteresis, on_delay_s, ' +
    'off_delay_s, stale_after_s, severity, message, enabled, updated_at FROM alert_rules ORDER BY id';
const CHANNELS_SQL = 'SELECT id, name, kind, target, severities FROM notification_channels WHERE enabled ORDER BY id';
const OPEN_ALERTS_SQL = `SELECT ${ALERT_COLUMNS} FROM alerts WHERE cleared_at IS NULL ORDER BY id`;

// What stale and offline rules start from: when each attribute last arrived (last_seen: the
// arrival, as the live readings are timed; last_ts is the device's own clock) and each
// device's last status.
const ATTRIBUTES_SQL = `SELECT d.site, d.room, d.name AS device, a.name AS attribute, a.unit, a.last_seen,
    COALESCE(a.last_txt, a.last_num::text) AS last_value
FROM attributes a JOIN devices d ON d.id = a.device_id`;
const STATUSES_SQL = 'SELECT site, room, name AS device, status, status_at FROM devices WHERE status IS NOT NULL';

// A raise: the alert and its 'raised' event (and 'flapping' when this raise starts a flap)
// in one statement. An open alert of the same rule and attribute already there (the
// partial unique index alerts_one_open) is not raised again: it is returned, raised = false.
const RAISE_SQL = `WITH new_alert AS (
    INSERT INTO alerts (rule_id, rule_name, site, room, device, attribute, severity, message, raised_value, flapping)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    ON CONFLICT (rule_id, site, room, device, attribute) WHERE cleared_at IS NULL DO NOTHING
    RETURNING ${ALERT_COLUMNS}
), events AS (
    INSERT INTO alert_events (alert_id, kind, value, detail)
    SELECT id, 'raised', raised_value, NULL FROM new_alert
    UNION ALL
    SELECT id, 'flapping', NULL, $11::text FROM new_alert WHERE $11::text IS NOT NULL
)
SELECT true AS raised, ${ALERT_COLUMNS} FROM new_alert
UNION ALL
SELECT false, ${ALERT_COLUMNS} FROM alerts
WHERE rule_id = $1 AND site = $3 AND room = $4 AND device = $5 AND attribute = $6 AND cleared_at IS NULL
    AND NOT EXISTS (SELECT 1 FROM new_alert)`;

// A clear, with its 'cleared' event; nothing if the alert is already cleared.
const CLEAR_SQL = `WITH cleared AS (
    UPDATE alerts SET cleared_at = now(), cleared_value = $2 WHERE id = $1 AND cleared_at IS NULL
    RETURNING ${ALERT_COLUMNS}
), event AS (
    INSERT INTO alert_events (alert_id, kind, value, detail) SELECT id, 'cleared', $2, $3 FROM cleared
)
SELECT ${ALERT_COLUMNS} FROM cleared`;

// Events of one alert ('notified', 'suppressed'), several at once.
const EVENTS_SQL = `INSERT INTO alert_events (alert_id, kind, actor, detail)
SELECT $1, e.kind, e.actor, e.detail FROM unnest($2::text[], $3::text[], $4::text[]) AS e(kind, actor, detail)`;

// A database outage, recorded once the database answers again (lib/alerts-outage.js): an
// alert of no rule, already cleared, and its events, each at the time it happened (the
// node's clock: the outage was lived without the database's). One statement: all or nothing.
const OUTAGE_SQL = `WITH outage AS (
    INSERT INTO alerts (rule_id, rule_name, site, room, device, attribute, severity, message,
        raised_at, raised_value, cleared_at, cleared_value)
    VALUES (NULL, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
    RETURNING ${ALERT_COLUMNS}
), events AS (
    INSERT INTO alert_events (alert_id, at, kind, value, actor, detail)
    SELECT outage.id, e.at, e.kind, e.value, e.actor, e.detail
    FROM outage, unnest($12::timestamptz[], $13::text[], $14::text[], $15::text[], $16::text[])
        WITH ORDINALITY AS e(at, kind, value, actor, detail, n)
    ORDER BY e.n
)
SELECT ${ALERT_COLUMNS} FROM outage`;

/**
 * Raise an alert: `a` = {rule_id, rule_name, site, room, device, attribute, severity,
 * message, raised_value, flapping, flapping_detail (text when this raise starts a flap, else
 * null)}. Resolves to {raised: true, alert} or, an open one being there already, {raised: false, alert}.
 */
async function raiseAlert(query, a) {
    const { rows } = await query(RAISE_SQL, [
        a.rule_id, a.rule_name, a.site, a.room, a.device, a.attribute, a.severity, a.message,
        a.raised_value, a.flapping, a.flapping_detail,
    ]);
    if (!rows.length) return null; // an open one committed by someone else meanwhile: not visible to this statement
    const { raised, ...alert } = rows[0];
    return { raised, alert };
}

/** Clear alert `id` with the reading `value` (text or null) and a `detail` (null for an ordinary clear): the row, or null. */
async function clearAlert(query, id, value, detail) {
    const { rows } = await query(CLEAR_SQL, [id, value, detail]);
    return rows[0] || null;
}

/** Record events [{kind, actor, detail}] of alert `id`. */
async function addEvents(query, id, events) {
    await query(EVENTS_SQL, [id, events.map((e) => e.kind), events.map((e) => e.actor), events.map((e) => e.detail)]);
}

/**
 * Record an outage `a` (an alerts row without id: rule_name, site, room, device, attribute,
 * severity, message, raised_at, raised_value, cleared_at, cleared_value) with its `events`
 * [{at, kind, value, actor, detail}], in order. Resolves to the stored row.
 */
async function recordOutage(query, a, events) {
    const column = (name) => events.map((e) => e[name] ?? null);
    const { rows } = await query(OUTAGE_SQL, [
        a.rule_name, a.site, a.room, a.device, a.attribute, a.severity, a.message,
        a.raised_at, a.raised_value, a.cleared_at, a.cleared_value,
        column('at'), column('kind'), column('value'), column('actor'), column('detail'),
    ]);
    return rows[0];
}

/** Every rule row, disabled ones too. */
async function loadRules(query) {
    return (await query(RULES_SQL)).rows;
}

/** The enabled notification channels. */
async function loadChannels(query) {
    return (await query(CHANNELS_SQL)).rows;
}

/** The open alerts. */
async function loadOpenAlerts(query) {
    return (await query(OPEN_ALERTS_SQL)).rows;
}

/** Each device's last status: [{site, room, device, status, status_at}]. */
async function loadStatuses(query) {
    return (await query(STATUSES_SQL)).rows;
}

/** {attributes: [{site, room, device, attribute, unit, last_seen, last_value}], statuses: loadStatuses()}. */
async function loadStartingPoint(query) {
    const attributes = (await query(ATTRIBUTES_SQL)).rows;
    return { attributes, statuses: await loadStatuses(query) };
}

module.exports = {
    LOCK_KEY, RULES_SQL, CHANNELS_SQL, OPEN_ALERTS_SQL, ATTRIBUTES_SQL, STATUSES_SQL, RAISE_SQL, CLEAR_SQL, EVENTS_SQL,
    OUTAGE_SQL, raiseAlert, clearAlert, addEvents, recordOutage, loadRules, loadChannels, loadOpenAlerts, loadStatuses, loadStartingPoint,
};
