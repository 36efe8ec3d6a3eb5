'use strict';
/**
 * Exactly-once on top of at-least-once: recognise the broker's redeliveries of messages the
 * ingest has already taken, so that none is stored twice. Plain module: no Node-RED.
 *
 * Why it is needed: readings with their own `ts` are idempotent (primary key), but a reading
 * stamped with its arrival time, a status or a reject would be stored again if the broker
 * sent it again, and a QoS 1 broker does so for every message whose PUBACK it has not
 * processed when the connection ends: messages not yet committed (right: they are not
 * stored), and committed ones whose PUBACK was lost with the connection or is still unread
 * in the broker's socket (wrong: they are stored). Mosquitto 2.0.11 reads one packet per
 * client per loop turn, so under load it processes our PUBACKs seconds late: the second
 * kind can be tens of thousands of messages, not just the last batch.
 *
 * The window: every QoS 1 message taken, in arrival order, from the oldest one whose PUBACK
 * the broker has not confirmed (AckingConsumer's PINGREQ barrier) to the newest. Each entry:
 * packet id, hash of topic and payload, committed or not, the batch that stored it. Each
 * committed batch writes its entries (its receipt) in the same transaction, and receipts go
 * once all their entries are confirmed, so after a crash the window is read back from them.
 *
 * After a reconnect (session resumed) Mosquitto first resends, DUP set and with their
 * packet ids, what it holds unacknowledged for us. Observed (doc/ingest.md): copies of
 * messages older than the window, if the broker lagged further behind than the window
 * reaches (we can no longer recognise those: they are stored again); then copies of the
 * window's messages the broker still had, in the order it numbered them (not always the
 * order we received them: whole blocks can come rotated); then messages we never took,
 * whose packet ids continue from the window's highest, into the gap the window leaves in
 * the 65,535 packet ids.
 *
 * Matching follows that shape. It starts with a run: a copy matching an entry (packet id
 * and hash) and the next copy matching one too. In the run, each copy matching an entry is
 * ours; the first copy matching none ends matching for the connection. Before the run, a
 * copy matching nothing is an older message, passed over (stored), unless its packet id is
 * at the start of the gap: then it is newer than all of ours, and matching ends. A copy of
 * a committed message is acknowledged without being stored; a copy of one still being
 * written is acknowledged when that batch commits.
 *
 * Why this can store a copy twice but never lose a message: a message we never took could
 * be taken for ours only if it had an entry's packet id, topic and payload. The window is
 * kept under 65,535 messages (MATCH_RANGE) and its gap must be wide (else nothing is
 * matched), so newer messages begin in the gap, where they end matching (before a run) or
 * the run (after it); only once they had filled the whole gap could one carry an entry's
 * packet id, and by then matching is over. A run can only start on our own messages or on
 * older ones, which are committed anyway. What is not matched is stored: at worst twice.
 */

const NOT_COMMITTED = -1;
// Entries among which the first copy after a reconnect is looked for, and the most the window
// keeps: under the 65,535 packet ids of a session, with room for a few entries missing from
// the receipts (a reject the database refused even alone is in no batch).
const MATCH_RANGE = 62000;
const PACKET_IDS = 65535; // 1 … 65535
// Newer messages begin at the start of the gap the window leaves among the packet ids; a
// packet id this close to it ends matching (they arrive a little out of order). The gap
// must be at least MIN_GAP wide for any matching to be done.
const NEWER_SLACK = 1000;
const MIN_GAP = 2 * NEWER_SLACK;

// Hashing stops here (the payload's length is hashed too): beyond the ingest's size limit a
// payload is a reject, and two copies of one message do not differ anyway.
const HASHED_PAYLOAD_BYTES = 65536;

/**
 * A 53-bit hash of topic and payload (cyrb53: two 32-bit multiply-xorshift lanes), the same
 * in every process, as a JS number (exact in a float64 and in a PostgreSQL bigint).
 */
function messageHash(topic, payload) {
    let h1 = 0xdeadbeef;
    let h2 = 0x41c6ce57;
    for (let i = 0; i < topic.length; i += 1) {
        const c = topic.charCodeAt(i);
        h1 = Math.imul(h1 ^ c, 2654435761);
        h2 = Math.imul(h2 ^ c, 1597334677);
    }
    // a separator no UTF-16 code unit can be, then the length: ("a/b", "c") ≠ ("a/bc", "")
    h1 = Math.imul(h1 ^ 0x10000 ^ payload.length, 2654435761);
    h2 = Math.imul(h2 ^ 0x10000 ^ payload.length, 1597334677);
    const n = Math.min(payload.length, HASHED_PAYLOAD_BYTES);
    for (let i = 0; i < n; i += 1) {
        const c = payload[i];
        h1 = Math.imul(h1 ^ c, 2654435761);
        h2 = Math.imul(h2 ^ c, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
    h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
    h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** One QoS 1 message in the window; it also travels through the ingest core as its meta. */
class Entry {
    constructor(packetId, hash, ticket, batch = NOT_COMMITTED) {
        this.packetId = packetId;
        this.hash = hash;
        this.ticket = ticket; // the consumer's ticket of its latest copy; -1: none
        this.batch = batch; // the batch that stored it, or NOT_COMMITTED
        this.taken = false; // handed to the ingest core
        this.done = false; // committed (or refused for good): a copy needs no storing
    }
}

class RedeliveryWindow {
    constructor() {
        this.entries = []; // [start, entries.length): the window, oldest first
        this.start = 0;
        this.firstTicket = 0; // first ticket of the current connection
        // matching after a reconnect: entries [start, oldEnd) are from before it
        this.aligning = false;
        this.oldEnd = 0;
        this.inRun = false;
        this.byPacketId = null; // packet id → old entry
        this.gapStart = 0; // first packet id of the gap the old entries leave (newer messages)
        this.held = null; // the copy that may start a run: {entry, packetId, hash, ticket}
        this.unmatched = 0; // old entries whose copy has not come (yet)
        this.redelivered = 0;
    }

    get size() {
        return this.entries.length - this.start;
    }

    /** Entries from receipts of an earlier run of this worker (committed, oldest first). */
    load(receipts) {
        for (const r of receipts) {
            for (let i = 0; i < r.packetIds.length; i += 1) {
                const e = new Entry(r.packetIds[i], Number(r.hashes[i]), -1, r.batchSeq);
                e.taken = true;
                e.done = true;
                this.entries.push(e);
            }
        }
        this.trim();
    }

    /** A connection is up; `firstTicket` is the consumer's next ticket. */
    connected(sessionPresent, firstTicket) {
        this.firstTicket = firstTicket;
        this.held = null;
        this.inRun = false;
        this.byPacketId = null;
        if (!sessionPresent) {
            // the broker resends nothing: no entry can come back
            this.entries = [];
            this.start = 0;
            this.aligning = false;
            return;
        }
        this.oldEnd = this.entries.length;
        this.unmatched = this.size;
        this.aligning = this.size > 0 && this.indexOld();
    }

    /**
     * Index the old entries by packet id and find the widest gap they leave among the
     * packet ids: newer messages begin there. False when matching would not be safe.
     */
    indexOld() {
        const ids = new Uint16Array(this.oldEnd - this.start);
        this.byPacketId = new Map();
        for (let i = this.start; i < this.oldEnd; i += 1) {
            const e = this.entries[i];
            if (this.byPacketId.has(e.packetId)) return false; // wrapped: ambiguous
            this.byPacketId.set(e.packetId, e);
            ids[i - this.start] = e.packetId;
        }
        ids.sort();
        let widest = PACKET_IDS - ids[ids.length - 1] + ids[0] - 1; // across 65535 → 1
        this.gapStart = ids[ids.length - 1] % PACKET_IDS + 1;
        for (let k = 1; k < ids.length; k += 1) {
            const gap = ids[k] - ids[k - 1] - 1;
            if (gap > widest) {
                widest = gap;
                this.gapStart = ids[k - 1] + 1;
            }
        }
        return widest >= MIN_GAP;
    }

    /**
     * A QoS 1 message arrived (settle the held one first, if any). Returns its entry: a new
     * one (not taken: to be stored), or the entry it is a copy of (its ticket now the copy's),
     * or null when it is held until the next message tells (settleHeld).
     */
    arrive(packetId, dup, hash, ticket) {
        if (this.aligning) {
            const e = dup ? this.byPacketId.get(packetId) : undefined;
            const match = e !== undefined && e.hash === hash && e.ticket < this.firstTicket ? e : null;
            if (this.inRun) {
                if (match !== null) {
                    this.copy(match, ticket);
                    if (this.unmatched === 0) this.endAlignment(); // every one of ours came back
                    return match;
                }
            } else if (match !== null) {
                this.held = { entry: match, packetId, hash, ticket };
                return null; // the start of a run, if the next copy agrees
            } else if (dup && !this.isNewer(packetId)) {
                return this.append(new Entry(packetId, hash, ticket)); // an older message
            }
            this.endAlignment();
        }
        return this.append(new Entry(packetId, hash, ticket));
    }

    /**
     * Decide about the held copy, given the message after it (packetId null: none came).
     * Returns the held copy's entry, as arrive() would.
     */
    settleHeld(packetId, dup, hash) {
        const held = this.held;
        this.held = null;
        const next = packetId !== null && dup ? this.byPacketId.get(packetId) : undefined;
        if (next !== undefined && next !== held.entry && next.hash === hash && next.ticket < this.firstTicket) {
            this.inRun = true;
            return this.copy(held.entry, held.ticket); // the next copy continues the run
        }
        this.endAlignment();
        return this.append(new Entry(held.packetId, held.hash, held.ticket));
    }

    /** Does this packet id (no entry's) lie at the start of the gap: a newer message? */
    isNewer(packetId) {
        return (packetId - this.gapStart + PACKET_IDS) % PACKET_IDS < NEWER_SLACK;
    }

    copy(entry, ticket) {
        entry.ticket = ticket;
        this.redelivered += 1;
        this.unmatched -= 1;
        return entry;
    }

    append(entry) {
        this.entries.push(entry);
        if (!this.aligning && this.entries.length - this.start > MATCH_RANGE) this.trim();
        return entry;
    }

    /**
     * Matching is over: old entries that did not come back are settled with the broker;
     * those that did are now on this connection, in the order their copies came.
     */
    endAlignment() {
        this.aligning = false;
        this.inRun = false;
        this.byPacketId = null;
        const old = this.entries.slice(this.start, this.oldEnd).filter((e) => e.ticket >= this.firstTicket);
        old.sort((a, b) => a.ticket - b.ticket);
        this.entries = old.concat(this.entries.slice(this.oldEnd));
        this.start = 0;
        this.oldEnd = old.length;
        if (this.entries.length > MATCH_RANGE) this.trim();
    }

    // Older entries could never be matched: let them go (committed ones only; a message
    // still being written stays until its commit).
    trim() {
        const { entries } = this;
        while (entries.length - this.start > MATCH_RANGE && entries[this.start].done) this.start += 1;
        this.compact();
    }

    compact() {
        if (this.start > 4096 && this.start * 2 > this.entries.length) {
            // indices below are absolute: shift them with the array
            this.entries = this.entries.slice(this.start);
            this.oldEnd = Math.max(0, this.oldEnd - this.start);
            this.start = 0;
        }
    }

    /** The entry's message is stored (its `batch` set) or refused for good: its ticket to ack. */
    committed(entry) {
        entry.done = true;
        return entry.ticket;
    }

    /** The entry's message was not taken (stopping): forget it, the broker sends it again. */
    forget(entry) {
        const i = this.entries.indexOf(entry, this.start);
        if (i === -1) return;
        this.entries.splice(i, 1);
        if (i < this.oldEnd) this.oldEnd -= 1;
        if (this.byPacketId !== null && this.byPacketId.get(entry.packetId) === entry) this.byPacketId.delete(entry.packetId);
    }

    /**
     * The broker has processed the PUBACKs of every ticket below `ticket` on the current
     * connection: those entries leave the window.
     */
    confirm(ticket) {
        if (this.aligning) return; // settled when matching ends; confirmations keep coming
        const { entries } = this;
        let i = this.start;
        while (i < entries.length) {
            const t = entries[i].ticket;
            if (t < this.firstTicket || t >= ticket) break;
            i += 1;
        }
        if (i === this.start) return;
        this.start = i;
        this.compact();
    }

    /**
     * The oldest batch whose receipt is still needed: the lowest of the committed entries'.
     * Old entries (from before the last reconnect) can be in any order; newer ones are in
     * commit order, so only the first of them counts.
     */
    oldestNeededBatch(fallback) {
        let oldest = fallback;
        for (let i = this.start; i < this.entries.length; i += 1) {
            const e = this.entries[i];
            if (e.batch !== NOT_COMMITTED && e.batch < oldest) oldest = e.batch;
            if (i >= this.oldEnd && (e.batch !== NOT_COMMITTED || !e.done)) break;
        }
        return oldest;
    }
}

module.exports = { RedeliveryWindow, Entry, messageHash, NOT_COMMITTED, MATCH_RANGE, PACKET_IDS };
