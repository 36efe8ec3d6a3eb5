'use strict';
/**
 * The ingest fed straight from the broker: an AckingConsumer (MQTT session, ordered PUBACKs,
 * bounded in-flight), the IngestCore (classify, batch, write, retry) and the
 * RedeliveryWindow (a copy of a message already taken is not stored twice), wired so that a
 * message is acknowledged to the broker only once the batch holding it is committed.
 * Plain module: no Node-RED (octopus-ingest.js is the wrapper).
 *
 *   broker ──PUBLISH──▶ consumer ──▶ window: new? ──▶ core: batch ──▶ write(batch + receipt)
 *   broker ◀──PUBACK─── consumer ◀── ack(ticket) ◀── committed ◀────────────┘
 *   broker ◀─PINGREQ──▶ consumer ──▶ confirmed: the window (and its receipts) shrink
 */

const { EventEmitter } = require('events');
const { AckingConsumer } = require('./acking-consumer');
const { IngestCore } = require('./ingest-core');
const { RedeliveryWindow, Entry, messageHash } = require('./redelivery-window');

const CLOCK_SLOTS = 10; // ingest_workers.clock_slot: 0-9
const LOAD_RETRY_INITIAL_MS = 500;
// A copy that may start a run of redeliveries waits at most this long for the next message.
const HOLD_MS = 100;
const LOAD_RETRY_MAX_MS = 30000;

/** What travels through the core with a QoS 0 message: its place in the consumer's order. */
class Qos0Delivery {
    constructor(ticket) {
        this.ticket = ticket;
    }
}

class BrokerIngest extends EventEmitter {
    /**
     * @param {object} opts
     * @param {object} opts.mqtt  AckingConsumer options (host, port, clientId, username,
     *        password, tls, topics, receiveMaximum, ...); onMessage/onConfirmed are ours
     * @param {object} opts.core  IngestCore options (batchSize, lingerMs, maxPayloadBytes,
     *        maxBuffered, onCommitted, onEvent); write is ours
     * @param {(items: object[], receipt: object) => Promise<number>} opts.write  stores a
     *        batch with its receipt in one transaction (store.writeItems bound to a pool)
     * @param {() => Promise<{batchSeq: number, packetIds: number[], hashes: number[]}[]>}
     *        opts.loadReceipts  this worker's receipts, oldest first (store.loadReceipts)
     * @param {() => Promise<number>} [opts.claimClockSlot]  this worker's arrival-clock slot
     *        (store.claimClockSlot); without it, one worker's clock (no slots)
     * @param {() => Promise<void>} [opts.releaseClockSlot]  gives the slot back on leaving
     * Events: 'mqtt' ({type: 'connect'|'disconnect'|'warn', ...}), 'receipts'
     * ({loaded} | {error, retryInMs}).
     */
    constructor(opts) {
        super();
        this.opts = opts;
        this.worker = opts.mqtt.clientId;
        this.window = new RedeliveryWindow();
        // Commands and platform topics are stored as nothing, but still travel in a batch, so
        // that their receipt is written before their PUBACK like any other message's.
        this.core = new IngestCore({ ...opts.core, batchIgnored: true, write: (items, metas) => this.writeBatch(items, metas) });
        this.consumer = new AckingConsumer({
            ...opts.mqtt,
            onMessage: (topic, payload, ticket, packetId, dup) => this.onMessage(topic, payload, ticket, packetId, dup),
            onConfirmed: (ticket) => this.window.confirm(ticket),
        });
        this.consumer.on('connect', (e) => this.onConnect(e));
        this.consumer.on('disconnect', (e) => this.onDisconnect(e));
        this.consumer.on('warn', (message) => this.emit('mqtt', { type: 'warn', message }));
        this.doneBound = (error, meta) => this.onDone(error, meta);
        this.nextBatchSeq = 1;
        this.batchesInFlight = new Set(); // numbers of the batches being written
        this.heldMessage = null; // topic and payload of the copy the window holds
        this.heldTimer = null;
        this.stopping = false;
        this.loadTimer = null;
    }

    /**
     * Read this worker's receipts and claim its arrival-clock slot (retrying while the
     * database is away), then connect.
     */
    start() {
        this.stopping = false;
        this.loadReceiptsThenConnect(LOAD_RETRY_INITIAL_MS);
    }

    loadReceiptsThenConnect(retryMs) {
        this.loadTimer = null;
        if (this.stopping) return;
        const claim = this.opts.claimClockSlot ? this.opts.claimClockSlot() : Promise.resolve(null);
        Promise.all([this.opts.loadReceipts(), claim]).then(([receipts, slot]) => {
            if (this.stopping) return;
            // Workers stamp disjoint microseconds: two readings of one attribute taken by two
            // workers at the same moment are two rows, not one (postgres/migrations/003).
            if (slot !== null) this.core.setClockSlot(slot, CLOCK_SLOTS);
            this.clockSlot = slot;
            this.window.load(receipts);
            for (const r of receipts) this.nextBatchSeq = Math.max(this.nextBatchSeq, r.batchSeq + 1);
            this.emit('receipts', { loaded: this.window.size });
            this.consumer.start();
        }, (error) => {
            // Connecting without them could store a redelivered message twice; and without a
            // database nothing can be stored anyway: the broker keeps the messages meanwhile.
            this.emit('receipts', { error, retryInMs: retryMs });
            if (this.stopping) return;
            this.loadTimer = setTimeout(() => this.loadReceiptsThenConnect(Math.min(retryMs * 2, LOAD_RETRY_MAX_MS)), retryMs);
        });
    }

    onConnect({ sessionPresent, firstTicket }) {
        this.window.connected(sessionPresent, firstTicket);
        this.emit('mqtt', { type: 'connect', sessionPresent });
    }

    onDisconnect(e) {
        // A held copy is unacknowledged: the broker sends it again on the next connection.
        clearTimeout(this.heldTimer);
        this.heldMessage = null;
        this.emit('mqtt', { type: 'disconnect', ...e });
    }

    onMessage(topic, payload, ticket, packetId, dup) {
        if (packetId < 0) { // QoS 0: at most once, never sent again
            this.core.receive(topic, payload, this.doneBound, new Qos0Delivery(ticket));
            return;
        }
        const hash = messageHash(topic, payload);
        if (this.heldMessage !== null) this.settleHeld(packetId, dup, hash);
        const entry = this.window.arrive(packetId, dup, hash, ticket);
        if (entry === null) {
            // maybe the first of a run of redeliveries: the next message tells
            this.heldMessage = { topic, payload: Buffer.from(payload), ticket };
            this.heldTimer = setTimeout(() => this.settleHeld(null, false, 0), HOLD_MS);
            return;
        }
        this.take(entry, topic, payload, ticket);
    }

    settleHeld(packetId, dup, hash) {
        clearTimeout(this.heldTimer);
        const { topic, payload, ticket } = this.heldMessage;
        this.heldMessage = null;
        this.take(this.window.settleHeld(packetId, dup, hash), topic, payload, ticket);
    }

    take(entry, topic, payload, ticket) {
        if (entry.done) {
            // a copy of a message already stored: acknowledged in its turn, not stored again
            this.consumer.ack(ticket);
        } else if (!entry.taken) {
            entry.taken = true;
            this.core.receive(topic, payload, this.doneBound, entry);
        }
        // else a copy of a message still being written: that commit acknowledges this copy
    }

    onDone(error, meta) {
        if (meta instanceof Qos0Delivery) {
            this.consumer.ack(meta.ticket);
            return;
        }
        if (error && error.retryable) {
            // Not taken: no PUBACK, so the broker sends it again. Its place at the head of the
            // acknowledgements would block every later PUBACK, so unless we are stopping,
            // reconnect: the broker then resends everything unacknowledged.
            this.window.forget(meta);
            if (!this.stopping) this.consumer.reconnect(error.message);
            return;
        }
        // Committed (or refused by the database for good, which a resend cannot change).
        this.consumer.ack(this.window.committed(meta));
    }

    /** Write a batch with its receipt: the packet ids and hashes of its QoS 1 messages. */
    writeBatch(items, metas) {
        const seq = this.nextBatchSeq;
        this.nextBatchSeq += 1;
        const packetIds = [];
        const hashes = [];
        for (const m of metas) {
            if (m instanceof Entry) {
                packetIds.push(m.packetId);
                hashes.push(m.hash);
            }
        }
        this.batchesInFlight.add(seq);
        const receipt = {
            worker: this.worker,
            batchSeq: seq,
            packetIds,
            hashes,
            // receipts before this hold only messages the broker has confirmed; a batch being
            // written alongside this one may commit first, so its receipt stays too
            keepFrom: Math.min(this.window.oldestNeededBatch(seq), ...this.batchesInFlight),
        };
        return this.opts.write(items, receipt).then((inserted) => {
            this.batchesInFlight.delete(seq);
            for (const m of metas) if (m instanceof Entry) m.batch = seq;
            return inserted;
        }, (error) => {
            this.batchesInFlight.delete(seq);
            throw error;
        });
    }

    /** Counters for octopus/stats/ingest/<worker>. */
    stats() {
        return {
            ...this.core.stats(),
            inflight: this.consumer.inflight,
            unconfirmed: this.consumer.unconfirmed,
            redelivered: this.window.redelivered,
            acked: this.consumer.counters.acked,
            connected: this.consumer.connected,
            clockSlot: this.clockSlot === undefined ? null : this.clockSlot,
        };
    }

    /**
     * Stop: write what is held (at most timeoutMs in all), send the PUBACKs that are due and
     * disconnect. Resolves to {unwritten, left}: messages not written (the broker still has
     * them), and whether the worker left the group.
     *
     * By default the session and its subscription are kept: the broker goes on queueing this
     * worker's share until it is back (a restart, a redeploy). With `leave`, the worker
     * unsubscribes first, stores what the broker still sends it, and ends its session, so
     * that the other workers take all new messages (a worker retired for good). If that
     * drain does not complete in time, the session is kept, without its subscription, with
     * what is left in it.
     */
    async stop(timeoutMs = 10000, { leave = false } = {}) {
        this.stopping = true;
        clearTimeout(this.loadTimer);
        clearTimeout(this.heldTimer);
        const deadline = Date.now() + timeoutMs;
        let drained = false;
        if (leave && this.consumer.connected) drained = await this.consumer.leave(timeoutMs * 0.6);
        this.consumer.pause();
        const unwritten = await this.core.close(Math.max(0, deadline - Date.now()));
        const left = drained && unwritten === 0;
        await this.consumer.stop(2000, { endSession: left });
        if (left && this.opts.releaseClockSlot) await this.opts.releaseClockSlot().catch(() => {});
        return { unwritten, left };
    }
}

module.exports = { BrokerIngest, CLOCK_SLOTS };
