'use strict';
/**
 * A cumulative histogram of durations, in seconds, in the shape Prometheus exposes one: the
 * ingest's batch write times travel in its statistics (octopus/stats/ingest/<worker>) and
 * the portal serves them as octopus_ingest_batch_write_seconds (doc/operations.md). Plain
 * module: no Node-RED.
 */

// From a fast local commit (a few ms) to a database that stalls: 5 ms ... 10 s.
const WRITE_SECONDS_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

class Histogram {
    /** @param {number[]} bounds  upper bounds of the buckets, increasing (+Inf is implied) */
    constructor(bounds = WRITE_SECONDS_BOUNDS) {
        this.bounds = bounds;
        this.counts = new Array(bounds.length).fill(0); // per bucket, not cumulative
        this.sum = 0;
        this.count = 0;
    }

    /** Count one observation of `seconds`. */
    observe(seconds) {
        const i = this.bounds.findIndex((bound) => seconds <= bound);
        if (i >= 0) this.counts[i] += 1;
        this.sum += seconds;
        this.count += 1;
    }

    /**
     * {le, counts, sum, count}: counts[i] observations were ≤ le[i] (cumulative, as
     * Prometheus's buckets); `count` is the +Inf bucket.
     */
    toJSON() {
        let running = 0;
        const counts = this.counts.map((n) => (running += n));
        return { le: [...this.bounds], counts, sum: Math.round(this.sum * 1e6) / 1e6, count: this.count };
    }
}

/** Seconds since `startedNs` (a process.hrtime.bigint() reading). */
function secondsSince(startedNs) {
    return Number(process.hrtime.bigint() - startedNs) / 1e9;
}

module.exports = { Histogram, WRITE_SECONDS_BOUNDS, secondsSince };
