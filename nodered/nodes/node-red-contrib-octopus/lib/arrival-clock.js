'use strict';
/**
 * Arrival timestamps for readings that carry no `ts`. A measurement is keyed on
 * (attribute, ts), so two readings of one attribute stamped with the same millisecond would
 * collapse into one row. This clock hands out strictly increasing microseconds (PostgreSQL's
 * timestamptz resolution), following the wall clock but never repeating or going back.
 *
 * With several ingest workers, each has a slot (postgres/migrations/003): its stamps are
 * only microseconds ≡ slot (mod `slots`), so the stamps of two workers are never equal. A
 * worker then has slots-fewer stamps per millisecond (100 with 10 slots); beyond that its
 * clock runs ahead of the wall clock, as it does beyond 1,000 without slots.
 */

/** Make a clock: () => microseconds since the epoch, strictly increasing, ≡ slot (mod slots). */
function createArrivalClock(nowMs = Date.now, { slot = 0, slots = 1, last = 0 } = {}) {
    let previous = last;
    return function nextMicros() {
        let us = nowMs() * 1000;
        if (us <= previous) us = previous + 1;
        const off = (((us - slot) % slots) + slots) % slots;
        previous = off === 0 ? us : us + slots - off;
        return previous;
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
