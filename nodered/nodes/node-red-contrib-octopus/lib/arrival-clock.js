'use strict';
/**
 * Arrival timestamps for readings that carry no `ts`. A measurement is keyed on
 * (attribute, ts), so two readings of one attribute stamped with the same millisecond would
 * collapse into one row. This clock hands out strictly increasing microseconds (PostgreSQL's
 * timestamptz resolution), following the wall clock but never repeating or going back.
 */

/** Make a clock: () => microseconds since the epoch, strictly increasing. */
function createArrivalClock(nowMs = Date.now) {
    let last = 0;
    return function nextMicros() {
        const us = nowMs() * 1000;
        last = us > last ? us : last + 1;
        return last;
    };
}

/** Microseconds since the epoch → ISO 8601 with six decimals, e.g. 2026-11-22T12:00:00.123456Z. */
function microsToIso(us) {
    const ms = Math.floor(us / 1000);
    const extra = String(us - ms * 1000).padStart(3, '0');
    return new Date(ms).toISOString().replace('Z', `${extra}Z`);
}

module.exports = { createArrivalClock, microsToIso };
