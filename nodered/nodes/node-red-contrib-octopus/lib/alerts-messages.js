'use strict';
/**
 * What the alert engine says, and how: a rule's message template filled in, the alert's
 * retained state on octopus/alerts/… (the JSON shape the portal publishes too, after an
 * acknowledgement), and the notification messages for Node-RED's stock e-mail, http request
 * and mqtt out nodes. Plain module: no Node-RED.
 */

const TEMPLATE_FIELD = /\{(rule|device|site|room|attribute|value|unit|severity|topic)\}/g;

/** A reading's value as alerts store it (text) and show it: null stays null. */
function formatValue(value) {
    if (value === null || value === undefined) return null;
    return String(value);
}

/**
 * A rule's message with {rule} {device} {site} {room} {attribute} {value} {unit} {severity}
 * {topic} replaced (topic = site/room/device/attribute); other braces are left as they are.
 * One pass: a value that itself holds "{rule}" is not replaced again.
 */
function renderMessage(template, { rule, site, room, device, attribute, value, unit, severity }) {
    const fields = {
        rule, site, room, device, attribute, severity,
        value: formatValue(value) ?? '',
        unit: unit ?? '',
        topic: `${site}/${room}/${device}/${attribute}`,
    };
    return template.replace(TEMPLATE_FIELD, (_, name) => fields[name]);
}

/** The retained topic of one rule's alerts on one attribute: octopus/alerts/<rule_id>/<site>/<room>/<device>/<attribute>. */
function alertTopic(ruleId, { site, room, device, attribute }) {
    return `octopus/alerts/${ruleId}/${site}/${room}/${device}/${attribute}`;
}

const iso = (t) => (t === null || t === undefined ? null : new Date(t).toISOString());

/** An alert's state: cleared once cleared (acknowledged or not), else acknowledged or active. */
function alertStateName(row) {
    if (row.cleared_at) return 'cleared';
    return row.acked_at ? 'acknowledged' : 'active';
}

/**
 * An alerts row → the JSON object published, retained, on alertTopic() after every change
 * (the portal publishes the same after an acknowledgement): ids as numbers, times as ISO
 * 8601 UTC strings or null, values as the text stored.
 */
function alertState(row) {
    return {
        // bigint: pg hands it over as a string; null for the database alert raised without
        // the database (lib/alerts-outage.js) until its outage is recorded
        id: row.id === null || row.id === undefined ? null : Number(row.id),
        rule_id: row.rule_id === null ? null : Number(row.rule_id),
        rule_name: row.rule_name,
        site: row.site,
        room: row.room,
        device: row.device,
        attribute: row.attribute,
        severity: row.severity,
        message: row.message,
        state: alertStateName(row),
        raised_at: iso(row.raised_at),
        raised_value: row.raised_value ?? null,
        acked_at: iso(row.acked_at),
        acked_by: row.acked_by ?? null,
        cleared_at: iso(row.cleared_at),
        cleared_value: row.cleared_value ?? null,
        flapping: row.flapping === true,
    };
}

/** The retained state message of an alert of rule `ruleId` (the row's rule_id is null once the rule is deleted). */
function stateMessage(ruleId, row) {
    return { topic: alertTopic(ruleId, row), payload: JSON.stringify(alertState(row)), qos: 1, retain: true };
}

// The stock e-mail node sends a body that looks like HTML (/<[a-z][\s\S]*>/i) as HTML too;
// ours is plain text, so a '<' right before a letter gets a space.
const looksLikeTag = /<(?=[a-z])/gi;
const oneLine = (s) => String(s).replace(/[\r\n]+/g, ' ');

/** The plain-text body of a notification e-mail. */
function emailBody(row, event, portalUrl) {
    const a = alertState(row);
    const lines = [
        a.message,
        '',
        `Alert:      ${event === 'cleared' ? 'cleared' : 'raised'} (${a.severity})`,
        `Rule:       ${a.rule_name}`,
        `Device:     ${a.site}/${a.room}/${a.device}`,
        `Attribute:  ${a.attribute}`,
        `Raised:     ${a.raised_at}${a.raised_value === null ? '' : `, value ${a.raised_value}`}`,
    ];
    if (a.cleared_at) lines.push(`Cleared:    ${a.cleared_at}${a.cleared_value === null ? '' : `, value ${a.cleared_value}`}`);
    if (a.acked_at) lines.push(`Acknowledged: ${a.acked_at} by ${a.acked_by}`);
    lines.push(`State:      ${a.state}`);
    if (a.flapping) lines.push('Flapping:   yes (raised again and again: notifications are held back until it settles)');
    if (portalUrl && a.id !== null) lines.push('', `${portalUrl.replace(/\/+$/, '')}/alerts/${a.id}`);
    return `${lines.join('\n')}\n`.replace(looksLikeTag, '< ');
}

/**
 * A notification of `event` ('raised' | 'cleared') of alert `row` to `channel` (a
 * notification_channels row) → {output, msg}: output 0 for mqtt (an mqtt out node), 1 for
 * email (the stock e-mail node, its To left empty), 2 for webhook (a stock http request
 * node, method "- set by msg.method -", URL empty).
 */
function notificationMessage(channel, row, event, { emailFrom, portalUrl }) {
    const body = { ...alertState(row), event };
    switch (channel.kind) {
    case 'email':
        return {
            output: 1,
            msg: {
                to: channel.target,
                from: emailFrom,
                topic: oneLine(`[Octopus ${row.severity}] ${event === 'cleared' ? 'cleared: ' : ''}${row.message}`),
                payload: emailBody(row, event, portalUrl),
            },
        };
    case 'webhook':
        return {
            output: 2,
            msg: { url: channel.target, method: 'POST', headers: { 'content-type': 'application/json' }, payload: body },
        };
    default: // mqtt
        return { output: 0, msg: { topic: channel.target, payload: JSON.stringify(body), qos: 1, retain: false } };
    }
}

module.exports = {
    renderMessage, formatValue, alertTopic, alertState, alertStateName, stateMessage, emailBody, notificationMessage,
};
