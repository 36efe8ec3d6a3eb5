'use strict';
/**
 * Turn one MQTT message into what the ingest does with it: a reading, a status, a reject or
 * nothing (commands and the platform's own topics). Plain module: no Node-RED.
 */

const { classifyTopic } = require('./topic');
const { decodeUtf8, parseMeasurement, parseStatus } = require('./payload');
const { microsToIso } = require('./arrival-clock');

const REJECT_PAYLOAD_KEPT_BYTES = 4096;

/**
 * Classify a message. `payload` is a Buffer; `arrivalUs` the arrival time in microseconds
 * (see arrival-clock.js); `maxPayloadBytes` the size limit. Returns one of
 *   {kind: 'reading', site, room, device, attribute, ts, value, unit}
 *   {kind: 'status', site, room, device, status, ts}
 *   {kind: 'reject', topic, reason, payload (first 4 KiB), size}
 *   {kind: 'ignored'}
 * with ts an ISO 8601 string.
 */
function classifyMessage(topic, payload, arrivalUs, maxPayloadBytes) {
    const t = classifyTopic(topic);
    if (t.kind === 'command' || t.kind === 'platform') return { kind: 'ignored' };
    if (t.kind === 'reject') return reject(topic, payload, t.reason);
    if (payload.length > maxPayloadBytes) {
        return reject(topic, payload, `payload of ${payload.length} bytes exceeds the ${maxPayloadBytes}-byte limit`);
    }
    const text = decodeUtf8(payload);
    if (typeof text !== 'string') return reject(topic, payload, text.error);

    if (t.kind === 'status') {
        const status = parseStatus(text);
        if (typeof status !== 'string') return reject(topic, payload, status.error);
        return { kind: 'status', site: t.site, room: t.room, device: t.device, status, ts: microsToIso(arrivalUs) };
    }
    const m = parseMeasurement(text, arrivalUs / 1000);
    if (m.error) return reject(topic, payload, m.error);
    return {
        kind: 'reading',
        site: t.site,
        room: t.room,
        device: t.device,
        attribute: t.attribute,
        ts: m.tsMs === null ? microsToIso(arrivalUs) : new Date(m.tsMs).toISOString(),
        value: m.value,
        unit: m.unit,
    };
}

function reject(topic, payload, reason) {
    return {
        kind: 'reject',
        // PostgreSQL text cannot hold NUL; MQTT forbids it in topics, but never let one
        // message make a whole batch unwritable.
        topic: String(topic).replace(/\u0000/g, '\uFFFD'),
        reason,
        // a copy, so the kept 4 KiB do not pin a large message's whole buffer in memory
        payload: Buffer.from(payload.subarray(0, REJECT_PAYLOAD_KEPT_BYTES)),
        size: payload.length,
    };
}

module.exports = { classifyMessage, REJECT_PAYLOAD_KEPT_BYTES };
