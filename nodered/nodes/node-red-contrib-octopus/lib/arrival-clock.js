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

// Under load tens of readings arrive in the same millisecond: its text is made once.
let cachedMs = NaN;
let cachedPrefix = '';

/** Microseconds since the epoch → ISO 8601 with six decimals, e.g. 2026-11-22T12:00:00.123456Z. */
function microsToIso(us) {
    const ms = Math.floor(us / 1000);
    if (ms !== cachedMs) {
        cachedMs = ms;
        cachedPrefix = new Date(ms).toISOString().slice(0, -1); // without the Z
    }
    const extra = us - ms * 1000;
    return `${cachedPrefix}${extra < 10 ? '00' : extra < 100 ? '0' : ''}${extra}Z`;
}

module.exports = { createArrivalClock, microsToIso };
