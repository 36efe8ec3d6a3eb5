'use strict';
/**
 * The ingest pipeline without Node-RED: classify each message, batch, write batches (a few
 * at once), retry a failed write with backoff, keep counters.
 *
 * Every message is handed in with a `done` callback that is called only once the batch
 * holding it is committed (or with an error if it is dropped), and an optional `meta` that
 * travels with it: `write` gets the batch's metas beside its items (broker-ingest.js
 * records the batch's MQTT packet ids with it), `done` gets it back as its second argument.
 * An error with `retryable` set means the message was not taken and may come again (the
 * ingest is stopping, or its buffer is full); any other error means it never will be
 * stored.
 */

const { classifyMessage } = require('./classify');
const { createArrivalClock } = require('./arrival-clock');
const { isDataError } = require('./store');
const { Histogram, secondsSince } = require('./histogram');

const noop = () => {};

const DEFAULTS = {
    batchSize: 2000,
    lingerMs: 50,
    liveMs: 15,
    maxBuffered: 100000,
    maxPayloadBytes: 65536,
    retryInitialMs: 500,
    writesInFlight: 2,
    retryMaxMs: 30000,
};

class IngestCore {
    /**
     * @param {object} opts
     * @param {(items: object[], metas: any[]) => Promise<number>} opts.write  stores a
     *        batch, resolves to the measurements inserted (store.writeItems bound to a pool)
     * @param {(items: object[], inserted: number) => void} [opts.onCommitted]
     * @param {(items: object[]) => void} [opts.onLive]  the live feed: the items taken
     *        (readings, statuses, rejects) in slices at most `liveMs` old, ahead of their
     *        commit; with `liveMs` 0, each committed batch's items after its commit
     * @param {(event: object) => void} [opts.onEvent]  write-failed, buffer-full, buffer-ok,
     *        data-error, dropped-unwritable, after-commit-failed, live-failed
     * @param {boolean} [opts.batchIgnored]  commands and platform topics travel in a batch
     *        (storing nothing) instead of being done at once, so that their `done` comes in
     *        order and their meta is written with a batch
     */
    constructor(opts) {
        this.opts = { ...DEFAULTS, ...opts };
        this.write = opts.write;
        this.onCommitted = opts.onCommitted || (() => {});
        this.onLive = opts.onLive || null;
        this.liveSlice = []; // items taken since the last onLive
        this.liveTimer = null;
        this.onEvent = opts.onEvent || (() => {});
        this.nowMs = opts.nowMs || Date.now;
        this.lastArrivalUs = 0;
        this.setClockSlot(0, 1);

        this.current = []; // entries {item, done} of the batch being filled
        this.queue = []; // sealed batches (arrays of entries), oldest first
        this.buffered = 0; // entries in current + queue, bounded by maxBuffered
        this.writing = 0; // batches being written
        this.lingerTimer = null;
        this.lingerDue = false;
        this.retryTimer = null;
        this.retryDelayMs = this.opts.retryInitialMs;
        this.bufferFull = false;
        this.closing = false;
        this.drainWaiters = [];
        this.counters = {
            received: 0, stored: 0, rejected: 0, batches: 0, errors: 0, ignored: 0, dropped: 0,
        };
        this.writeSeconds = new Histogram(); // whole batches committed, not one-by-one rewrites
        this.since = new Date(opts.nowMs ? opts.nowMs() : Date.now()).toISOString();
    }

    /**
     * Take one MQTT message (payload a Buffer); `done(err?, meta)` is called after its
     * commit.
     */
    receive(topic, payload, done = noop, meta = undefined) {
        this.counters.received += 1;
        const item = classifyMessage(topic, payload, this.nextArrivalUs(), this.opts.maxPayloadBytes);
        if (item.kind === 'ignored') {
            this.counters.ignored += 1;
            if (!this.opts.batchIgnored) {
                done(undefined, meta);
                return item;
            }
        }
        this.add(item, done, meta);
        return item;
    }

    add(item, done, meta) {
        if (this.closing || this.buffered >= this.opts.maxBuffered) {
            this.drop(done, meta);
            return;
        }
        this.current.push({ item, done, meta });
        this.buffered += 1;
        if (this.onLive && this.opts.liveMs > 0 && item.kind !== 'ignored') this.toLive(item);
        if (this.current.length >= this.opts.batchSize) {
            this.seal();
        } else if (this.current.length === 1) {
            this.lingerTimer = setTimeout(() => this.lingerExpired(), this.opts.lingerMs);
        }
        this.pump();
    }

    /**
     * Stamp arrival times with microseconds ≡ slot (mod slots) from now on: the stamps of
     * workers with different slots never collide (arrival-clock.js).
     */
    setClockSlot(slot, slots) {
        const clock = createArrivalClock(this.nowMs, { slot, slots, last: this.lastArrivalUs });
        this.nextArrivalUs = () => {
            this.lastArrivalUs = clock();
            return this.lastArrivalUs;
        };
    }

    /** Counters since start, as published on octopus/stats/ingest/<worker>; `at`: now. */
    stats() {
        return {
            ...this.counters, buffered: this.buffered, since: this.since,
            at: new Date(this.nowMs()).toISOString(), writeSeconds: this.writeSeconds.toJSON(),
        };
    }

    /**
     * Stop taking messages, write what is buffered (waiting at most timeoutMs), stop timers.
     * Resolves to the number of messages that could not be written.
     */
    async close(timeoutMs = 10000) {
        this.closing = true;
        if (this.current.length > 0) this.seal();
        if (this.retryTimer) this.retryNow();
        this.pump();
        if (this.buffered > 0) {
            await new Promise((resolve) => {
                const timer = setTimeout(resolve, timeoutMs);
                this.drainWaiters.push(() => {
                    clearTimeout(timer);
                    resolve();
                });
            });
        }
        clearTimeout(this.lingerTimer);
        clearTimeout(this.retryTimer);
        this.retryTimer = null;
        this.flushLive();
        return this.buffered;
    }

    // --- the live feed -----------------------------------------------------------------

    // What is shown live does not wait for the disk: slices of a few ms, apart from the
    // batches, whose linger and commit add ~45 ms at p50 (doc/performance.md, "Live view").
    toLive(item) {
        this.liveSlice.push(item);
        if (this.liveSlice.length === 1) {
            this.liveTimer = setTimeout(() => this.flushLive(), this.opts.liveMs);
        }
    }

    flushLive() {
        clearTimeout(this.liveTimer);
        this.liveTimer = null;
        if (this.liveSlice.length === 0) return;
        const items = this.liveSlice;
        this.liveSlice = [];
        this.live(items);
    }

    live(items) {
        try {
            this.onLive(items);
        } catch (error) {
            this.onEvent({ type: 'live-failed', error });
        }
    }

    // --- batching ----------------------------------------------------------------------

    seal() {
        clearTimeout(this.lingerTimer);
        this.lingerTimer = null;
        this.lingerDue = false;
        this.queue.push(this.current);
        this.current = [];
    }

    lingerExpired() {
        this.lingerTimer = null;
        // While a write is in flight the batch keeps filling (up to batchSize): under load
        // that makes batches larger instead of queueing many small ones.
        this.lingerDue = true;
        this.pump();
    }

    // --- writing -----------------------------------------------------------------------

    // Up to `writesInFlight` batches are written at once, each in its own transaction: while
    // PostgreSQL executes one, the next is prepared and sent. Their order does not matter to
    // the data (idempotent inserts; last values and statuses compare timestamps), and the
    // broker ingest acknowledges messages in arrival order whatever order batches commit in.
    pump() {
        if (this.retryTimer) return;
        while (this.writing < this.opts.writesInFlight) {
            if (this.queue.length === 0 && this.lingerDue && this.current.length > 0) this.seal();
            if (this.queue.length === 0) return;
            const batch = this.queue.shift();
            this.writing += 1;
            this.writeBatch(batch).then(
                () => {
                    this.writing -= 1;
                    this.retryDelayMs = this.opts.retryInitialMs;
                    this.afterRelease();
                    this.pump();
                },
                (error) => {
                    this.writing -= 1;
                    // what of it is not written yet goes first again
                    this.queue.unshift(batch);
                    this.counters.errors += 1;
                    if (this.retryTimer) return; // another write failed too: one retry for all
                    const retryInMs = this.retryDelayMs;
                    this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.opts.retryMaxMs);
                    this.onEvent({ type: 'write-failed', error, retryInMs, buffered: this.buffered });
                    if (this.closing) {
                        // one last attempt was made: do not keep Node-RED waiting on a dead database
                        this.drainWaiters.splice(0).forEach((fn) => fn());
                    } else {
                        this.retryTimer = setTimeout(() => this.retryNow(), retryInMs);
                    }
                },
            );
        }
    }

    retryNow() {
        clearTimeout(this.retryTimer);
        this.retryTimer = null;
        this.pump();
    }

    /** Write one batch; a batch the database refuses for its data is written item by item. */
    async writeBatch(batch) {
        try {
            const started = process.hrtime.bigint();
            const inserted = await this.write(batch.map((e) => e.item), batch.map((e) => e.meta));
            this.writeSeconds.observe(secondsSince(started));
            this.commit(batch.splice(0), inserted);
        } catch (error) {
            if (!isDataError(error)) throw error;
            this.onEvent({ type: 'data-error', error, size: batch.length });
            await this.writeOneByOne(batch);
        }
    }

    // Isolates the item(s) the database cannot take so that one bad message never blocks the
    // ingest. Written entries leave `batch` at once, so a retry after a connection error
    // neither rewrites nor loses them.
    async writeOneByOne(batch) {
        while (batch.length > 0) {
            const entry = batch[0];
            let inserted;
            try {
                inserted = await this.write([entry.item], [entry.meta]);
            } catch (error) {
                if (!isDataError(error)) throw error;
                if (entry.item.kind === 'reject') {
                    this.onEvent({ type: 'dropped-unwritable', error, item: entry.item });
                    batch.shift();
                    this.counters.dropped += 1;
                    this.buffered -= 1;
                    entry.done(error, entry.meta);
                    continue;
                }
                entry.item = refusedByDatabase(entry.item, error);
                continue;
            }
            this.commit(batch.splice(0, 1), inserted);
        }
    }

    commit(entries, inserted) {
        const items = entries.map((e) => e.item);
        this.counters.batches += 1;
        this.counters.stored += inserted;
        for (const item of items) if (item.kind === 'reject') this.counters.rejected += 1;
        this.buffered -= entries.length;
        // What happens after the commit must never make a committed batch look unwritten.
        try {
            for (const e of entries) e.done(undefined, e.meta);
            this.onCommitted(items, inserted);
        } catch (error) {
            this.onEvent({ type: 'after-commit-failed', error });
        }
        if (this.onLive && this.opts.liveMs === 0) this.live(items);
    }

    // --- bounds ------------------------------------------------------------------------

    drop(done, meta) {
        this.counters.dropped += 1;
        if (!this.bufferFull && !this.closing) {
            this.bufferFull = true;
            this.onEvent({ type: 'buffer-full', buffered: this.buffered });
        }
        const error = new Error(this.closing
            ? 'ingest is stopping: message not taken'
            : `ingest buffer full (${this.opts.maxBuffered} messages waiting for the database): message dropped`);
        error.retryable = true; // not taken, not stored: a broker may send it again
        done(error, meta);
    }

    afterRelease() {
        if (this.bufferFull && this.buffered < this.opts.maxBuffered * 0.9) {
            this.bufferFull = false;
            this.onEvent({ type: 'buffer-ok', dropped: this.counters.dropped });
        }
        if (this.buffered === 0) this.drainWaiters.splice(0).forEach((fn) => fn());
    }
}

/** A reading or status the database refused becomes a reject that says why. */
function refusedByDatabase(item, error) {
    const { kind, ...fields } = item;
    const payload = Buffer.from(JSON.stringify(fields));
    const topic = [item.site, item.room, item.device, kind === 'status' ? 'status' : item.attribute].join('/');
    return {
        kind: 'reject',
        topic: topic.replace(/\u0000/g, '\uFFFD'),
        reason: `database refused it: ${error.message}`.replace(/\u0000/g, ''),
        payload: payload.subarray(0, 4096),
        size: payload.length,
    };
}

module.exports = { IngestCore, DEFAULTS };
