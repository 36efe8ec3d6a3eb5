'use strict';
/**
 * Payload parsing for the ingest (doc/topics.md). Each parser returns either a value or
 * {error: '<reason a person can act on>'}. Plain module: no Node-RED.
 */

const utf8 = new TextDecoder('utf-8', { fatal: true });

// A bare number as devices write it: 23.5, -4, 1e3, .5 (no hex, no "12abc", no "NaN").
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
// A short state string: starts with a letter; letters, digits, space and _.:- ; ≤ 64 chars.
const STATE = /^\p{L}[\p{L}\p{N} _.:-]{0,63}$/u;
// Words that look like states but mean "the sensor has no number": refused, not stored as text.
const NOT_A_NUMBER = /^(?:nan|[+-]?inf(?:inity)?)$/i;
// ISO 8601 date and time with a zone (a time without one is ambiguous).
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/i;
const MAX_UNIT_CHARS = 32;
const UNIT = /^[^\u0000-\u001f\u007f]{1,32}$/u;
// Device clocks before 2000 are unset clocks or epoch *seconds*; a day ahead is a wrong clock.
const EARLIEST_TS_MS = Date.UTC(2000, 0, 1);
const MAX_FUTURE_MS = 24 * 3600 * 1000;

const VALUE_KINDS = 'a number, true/false, a state string or a JSON object with "value"';

/** Decode bytes as strict UTF-8, or {error}. */
function decodeUtf8(bytes) {
    try {
        return utf8.decode(bytes);
    } catch (e) {
        return { error: 'payload is not valid UTF-8' };
    }
}

/**
 * Parse a measurement payload (already decoded text) received at receivedMs:
 * {value, tsMs|null, unit|null} or {error}. tsMs null means "use the arrival time".
 */
function parseMeasurement(text, receivedMs) {
    const s = text.trim();
    if (s.length === 0) return { error: 'payload is empty' };
    if (s[0] === '{') return parseJsonMeasurement(s, receivedMs);
    const value = parseBareValue(s);
    if (value !== null && typeof value === 'object') return value;
    return { value, tsMs: null, unit: null };
}

/** A bare value: a finite number, a boolean or a state string; or {error}. */
function parseBareValue(s) {
    if (NUMBER.test(s)) {
        const n = Number(s);
        return Number.isFinite(n) ? n : { error: `number ${truncate(s)} is out of range` };
    }
    if (s === 'true') return true;
    if (s === 'false') return false;
    if (NOT_A_NUMBER.test(s)) return { error: `value ${s} is not a finite number` };
    if (STATE.test(s)) return s;
    return { error: `payload ${quote(s)} is not ${VALUE_KINDS}` };
}

function parseJsonMeasurement(s, receivedMs) {
    let obj;
    try {
        obj = JSON.parse(s);
    } catch (e) {
        return { error: `payload is not valid JSON (${e.message})` };
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
        return { error: 'JSON payload must be an object with "value"' };
    }
    if (!Object.prototype.hasOwnProperty.call(obj, 'value') || obj.value === null) {
        return { error: 'JSON payload has no "value"' };
    }
    const value = parseJsonValue(obj.value);
    if (value !== null && typeof value === 'object') return value;

    let tsMs = null;
    if (obj.ts !== undefined && obj.ts !== null) {
        tsMs = parseTs(obj.ts, receivedMs);
        if (typeof tsMs === 'object') return tsMs;
    }
    let unit = null;
    if (obj.unit !== undefined && obj.unit !== null) {
        if (typeof obj.unit !== 'string' || !UNIT.test(obj.unit)) {
            return { error: `"unit" must be a string of 1 to ${MAX_UNIT_CHARS} printable characters` };
        }
        unit = obj.unit;
    }
    return { value, tsMs, unit };
}

function parseJsonValue(v) {
    if (typeof v === 'number') {
        // JSON.parse turns 1e999 into Infinity
        return Number.isFinite(v) ? v : { error: '"value" is not a finite number' };
    }
    if (typeof v === 'boolean') return v;
    if (typeof v === 'string') {
        if (NOT_A_NUMBER.test(v)) return { error: `"value" ${v} is not a finite number` };
        if (STATE.test(v)) return v;
        return { error: `"value" ${quote(v)} is not a number, a boolean or a state string` };
    }
    return { error: '"value" must be a number, a boolean or a state string' };
}

/** ts as ISO 8601 (with a zone) or epoch milliseconds (number or digits) → ms, or {error}. */
function parseTs(ts, receivedMs) {
    let ms = NaN;
    if (typeof ts === 'number') {
        ms = ts;
    } else if (typeof ts === 'string' && /^\d+$/.test(ts)) {
        ms = Number(ts);
    } else if (typeof ts === 'string') {
        ms = parseIsoTime(ts);
    }
    if (!Number.isFinite(ms)) {
        return { error: '"ts" is not a time: use ISO 8601 with a zone (2026-11-22T12:00:00Z) or epoch milliseconds' };
    }
    ms = Math.floor(ms);
    if (ms < EARLIEST_TS_MS) {
        return { error: '"ts" is before 2000: epoch seconds instead of milliseconds, or an unset clock?' };
    }
    if (ms > receivedMs + MAX_FUTURE_MS) {
        return { error: '"ts" is more than a day in the future: check the device clock' };
    }
    return ms;
}

function parseIsoTime(s) {
    const m = ISO_TIME.exec(s);
    if (m === null) return NaN;
    // Date.parse rolls 2026-02-30 over into March: refuse a day the month does not have
    const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (new Date(Date.UTC(y, mo - 1, d)).getUTCDate() !== d) return NaN;
    return Date.parse(s.replace(' ', 'T').replace(',', '.'));
}

/** Parse an availability payload: 'online' | 'offline', or {error}. */
function parseStatus(text) {
    const s = text.trim();
    if (s === 'online' || s === 'offline') return s;
    return { error: `status must be "online" or "offline", not ${quote(s)}` };
}

// Reasons end up in the database and the portal: keep the echoed input short and printable.
function quote(s) {
    return JSON.stringify(truncate(s));
}
function truncate(s) {
    const clean = s.replace(/[\u0000-\u001f\u007f]/g, '\uFFFD');
    return clean.length > 40 ? `${clean.slice(0, 40)}…` : clean;
}

module.exports = { decodeUtf8, parseMeasurement, parseStatus, parseTs };
