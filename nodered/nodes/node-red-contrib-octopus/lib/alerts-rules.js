'use strict';
/**
 * Alert rules (postgres/migrations/007, table alert_rules) as the engine evaluates them: a
 * row checked and made ready once (its device filter compiled, seconds in milliseconds, a
 * default message), the conditions of threshold rules, and what counts as a change of a
 * rule. Plain module: no Node-RED.
 */

const { compileTopicFilter } = require('./topic');

// The fields of a row that change what a rule does: any change resets its evaluation.
const RULE_FIELDS = [
    'name', 'kind', 'devices', 'attribute', 'condition', 'low', 'high', 'hysteresis',
    'on_delay_s', 'off_delay_s', 'stale_after_s', 'severity', 'message',
];

/** A rule row's identity for change detection: its fields and updated_at. */
function ruleSignature(row) {
    const updated = row.updated_at instanceof Date ? row.updated_at.getTime() : row.updated_at;
    return JSON.stringify([...RULE_FIELDS.map((f) => row[f]), updated]);
}

/** The message of a rule whose `message` is empty. */
function defaultMessage(row) {
    if (row.kind === 'offline') return '{rule}: {site}/{room}/{device} is offline';
    if (row.kind === 'stale') return `{rule}: no reading of {topic} for ${row.stale_after_s} s`;
    return '{rule}: {topic} = {value}{unit}';
}

const num = (v) => (v === null || v === undefined ? null : Number(v));

/**
 * An alert_rules row → {rule} ready to evaluate, or {problem} saying why it cannot be (the
 * table's checks catch most mistakes; these are the ones they cannot express).
 */
function prepareRule(row) {
    const filter = compileTopicFilter(row.devices, 3);
    if (filter.problem) return { problem: `devices: ${filter.problem} (a filter over <site>/<room>/<device>)` };
    const rule = {
        id: row.id,
        name: row.name,
        kind: row.kind,
        devices: row.devices,
        matchesDevice: filter.match, // (site/room/device) → boolean
        attribute: row.kind === 'offline' ? 'status' : row.attribute, // a name, or '+' for all
        condition: row.condition,
        low: num(row.low),
        high: num(row.high),
        hysteresis: num(row.hysteresis) || 0,
        onDelayMs: (num(row.on_delay_s) || 0) * 1000,
        offDelayMs: (num(row.off_delay_s) || 0) * 1000,
        staleAfterMs: (num(row.stale_after_s) || 0) * 1000,
        severity: row.severity,
        message: row.message || defaultMessage(row),
        signature: ruleSignature(row),
    };
    if (rule.kind === 'threshold' && rule.condition === 'outside' && rule.low + rule.hysteresis > rule.high - rule.hysteresis) {
        return {
            problem: `outside ${rule.low}…${rule.high} with a hysteresis of ${rule.hysteresis} would never clear: ` +
                'a value must come back to low + hysteresis … high − hysteresis, an empty range',
        };
    }
    if (!['threshold', 'offline', 'stale'].includes(rule.kind)) return { problem: `unknown kind "${rule.kind}"` };
    return { rule };
}

/** Whether `rule` watches attribute `attribute` of the device at `deviceTopic` (site/room/device). */
function ruleMatches(rule, deviceTopic, attribute) {
    return (rule.attribute === '+' || rule.attribute === attribute) && rule.matchesDevice(deviceTopic);
}

/** A threshold rule's raise condition on a number. */
function raiseHolds(rule, v) {
    switch (rule.condition) {
    case 'above': return v > rule.high;
    case 'below': return v < rule.low;
    case 'outside': return v < rule.low || v > rule.high;
    default: return v >= rule.low && v <= rule.high; // inside
    }
}

/** A threshold rule's clear condition on a number: back past the limit by the hysteresis. */
function clearHolds(rule, v) {
    const h = rule.hysteresis;
    switch (rule.condition) {
    case 'above': return v < rule.high - h;
    case 'below': return v > rule.low + h;
    case 'outside': return v >= rule.low + h && v <= rule.high - h;
    default: return v < rule.low - h || v > rule.high + h; // inside
    }
}

/** A reading's value as a threshold rule sees it: numbers, booleans as 1/0; else null. */
function numericValue(value) {
    if (typeof value === 'boolean') return value ? 1 : 0;
    return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

module.exports = {
    RULE_FIELDS, prepareRule, ruleSignature, ruleMatches, raiseHolds, clearHolds, numericValue, defaultMessage,
};
