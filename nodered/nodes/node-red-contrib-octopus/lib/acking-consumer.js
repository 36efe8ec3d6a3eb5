'use strict';
/**
 * An MQTT 5 consumer that acknowledges a message only when told to: the ingest calls
 * `ack(ticket)` once the batch holding the message is committed, and only then does the
 * broker get its PUBACK. Plain module: no Node-RED.
 *
 * Why not mqtt.js (the client Node-RED's `mqtt in` uses): it sends the PUBACK when a
 * message arrives, and its hooks for deferring that (`customHandleAcks`, `handleMessage`)
 * stop its packet pipeline until they call back, so at most one message is ever held and
 * nothing can be batched. This client is small instead: framing and PUBLISH decoding are
 * done here (the hot path, no allocation beyond the topic string and a payload view), the
 * rare packets (CONNACK, SUBACK, DISCONNECT) are decoded and all packets we send are
 * encoded by `mqtt-packet`, the codec mqtt.js itself is built on (pinned in package.json).
 *
 * What it guarantees:
 * - clean start off, a session expiry, a fixed client id: the broker keeps the session and
 *   the messages queued for it while the consumer is away;
 * - PUBACKs leave in the order the PUBLISHes arrived (MQTT 5, 4.6), however `ack` is
 *   called: a message acknowledged early waits for those before it. All PUBACKs that are
 *   due go out in one socket write;
 * - at most `receiveMaximum` messages held (received, not yet acknowledged): the value is
 *   sent in CONNECT so that a broker stops sending there, and enforced here as well by not
 *   reading the socket while that many are held (TCP then holds the broker back), because
 *   Mosquitto 2.0.11 honours it for the first window only (see holdBack). The rest waits in
 *   the broker's queue;
 * - PUBACKs held for a connection that dropped are discarded: the broker resends those
 *   messages (DUP set, same packet id) on the next connection of the session;
 * - it tells when the broker has *processed* the PUBACKs (`onConfirmed`): a PINGREQ follows
 *   each write of PUBACKs, and the broker handles a client's packets in order, so its
 *   PINGRESP confirms every PUBACK before it. Mosquitto 2.0.11 reads one packet per client
 *   per loop turn, and under load processes our PUBACKs seconds after we send them (measured
 *   up to 375,000 messages late with 8 publishers at full speed): until confirmed, a
 *   committed message may still come back (see redelivery-window.js). This is not used for
 *   flow control: the PINGRESP queues behind the PUBLISHes the broker has already sent, so
 *   waiting for it without reading would never end;
 * - it reconnects by itself with exponential backoff, and never throws out of a socket
 *   event.
 */

const net = require('net');
const tls = require('tls');
const { EventEmitter } = require('events');
const mqttPacket = require('mqtt-packet');

const PROTOCOL_VERSION = 5;
const PINGREQ = Buffer.from([0xc0, 0x00]);
const PUBLISH = 3;
const MAX_RECEIVE_MAXIMUM = 65535;

const DEFAULTS = {
    port: 1883,
    keepaliveS: 60,
    sessionExpiryS: 7 * 24 * 3600,
    receiveMaximum: 10000,
    qos: 1,
    reconnectInitialMs: 500,
    reconnectMaxMs: 30000,
    connectTimeoutMs: 10000,
};

// Reason codes worth a sentence in the log (MQTT 5, 2.4).
const REASONS = {
    0x80: 'unspecified error',
    0x81: 'malformed packet',
    0x82: 'protocol error',
    0x85: 'client identifier not valid',
    0x86: 'bad user name or password',
    0x87: 'not authorized',
    0x88: 'server unavailable',
    0x89: 'server busy',
    0x8a: 'banned',
    0x8b: 'server shutting down',
    0x8d: 'keep alive timeout',
    0x8e: 'session taken over (another client connected with the same client id)',
    0x8f: 'topic filter invalid',
    0x93: 'receive maximum exceeded',
    0x95: 'packet too large',
    0x97: 'quota exceeded',
    0x9e: 'shared subscriptions not supported',
    0xa2: 'wildcard subscriptions not supported',
};

function reasonText(code) {
    return `${REASONS[code] || 'reason'} (0x${code.toString(16).padStart(2, '0')})`;
}

class AckingConsumer extends EventEmitter {
    /**
     * @param {object} opts
     * @param {string} opts.host
     * @param {number} [opts.port]
     * @param {string} opts.clientId  fixed: the broker keys the session on it
     * @param {string} [opts.username]
     * @param {string} [opts.password]
     * @param {string[]} opts.topics  topic filters, subscribed with `qos` on every connect
     * @param {string[]} [opts.staleTopics]  filters unsubscribed on every connect, after that
     * @param {object} [opts.tls]  tls.connect options; plain TCP when absent
     * @param {(ticket: number) => void} [opts.onConfirmed]  the broker has processed the
     *        PUBACKs of every ticket below this one, on the current connection
     * @param {(topic: string, payload: Buffer, ticket: number, packetId: number, dup: boolean) => void} opts.onMessage
     *        called for each PUBLISH. `ticket` is what `ack` takes, for every message (a QoS 0
     *        one has no PUBACK, but holds its place until released); `packetId` is -1 at QoS
     *        0. `payload` is a view into the socket's buffer: copy what you keep.
     * Events: 'connect' ({sessionPresent}), 'disconnect' ({error, reason}), 'subscribed'
     * (reason codes), 'warn' (message).
     */
    constructor(opts) {
        super();
        this.opts = { ...DEFAULTS, ...opts };
        const rm = this.opts.receiveMaximum;
        if (!Number.isInteger(rm) || rm < 1 || rm > MAX_RECEIVE_MAXIMUM) {
            throw new RangeError(`receiveMaximum must be a whole number from 1 to ${MAX_RECEIVE_MAXIMUM}, not ${rm}`);
        }
        this.onMessage = opts.onMessage;
        this.onConfirmed = opts.onConfirmed || (() => {});

        // The messages of the current connection not yet released, in arrival order, as a ring
        // indexed by ticket: ticket t is at t & mask; [head, tail) are held.
        this.allocateRing(rm);
        this.head = 0;
        this.tail = 0;
        this.confirmed = 0; // tickets below this: PUBACK processed by the broker (or no PUBACK)
        this.pingMarks = []; // for each PINGREQ in flight, the head when it was sent
        this.flushScheduled = false;
        this.flushBound = () => this.flush();

        this.socket = null;
        this.connected = false;
        this.stopping = false;
        this.paused = false;
        this.reconnectTimer = null;
        this.reconnectDelayMs = this.opts.reconnectInitialMs;
        this.keepaliveTimer = null;
        this.connectTimer = null;
        this.counters = { messages: 0, acked: 0, connects: 0, heldBack: 0 };
    }

    /** Tickets on this connection released but not yet confirmed by the broker. */
    get unconfirmed() {
        return this.head - this.confirmed;
    }

    /** Messages received on this connection and not yet released (acknowledged). */
    get inflight() {
        return this.tail - this.head;
    }

    get receiveMaximum() {
        return this.opts.receiveMaximum;
    }

    /** Connect (and keep reconnecting until stop()). */
    start() {
        this.stopping = false;
        this.connect();
    }

    /**
     * Acknowledge the message of `ticket` once every message that arrived before it on the
     * same connection is acknowledged too. A ticket of an earlier connection is ignored: the
     * broker will resend that message.
     */
    ack(ticket) {
        if (ticket < this.head || ticket >= this.tail) return; // void, or released already
        this.acked[ticket & this.mask] = 1;
        if (ticket === this.head && !this.flushScheduled) {
            this.flushScheduled = true;
            process.nextTick(this.flushBound);
        }
    }

    /** Stop reading from the socket (PUBACKs still go out): no more messages arrive. */
    pause() {
        this.paused = true;
        if (this.socket) this.socket.pause();
    }

    /** True while reading is held back because `receiveMaximum` messages are held. */
    get backpressure() {
        return this.flowPaused;
    }

    /** Drop the connection (the broker resends what is unacknowledged) and reconnect. */
    reconnect(reason) {
        if (this.socket) this.socket.destroy(reason ? new Error(reason) : undefined);
    }

    /**
     * Leave the subscription for good: UNSUBSCRIBE (the broker routes nothing more to this
     * session), then go on delivering what it still has for us until nothing is held and
     * nothing has arrived for `quietMs`. Resolves to true when drained, false if not within
     * timeoutMs or if the connection is lost.
     */
    async leave(timeoutMs, quietMs = 500) {
        if (!this.connected) return false;
        const socket = this.socket;
        const deadline = Date.now() + timeoutMs;
        const unsubscribed = new Promise((resolve) => { this.onUnsuback = resolve; });
        this.send(mqttPacket.generate({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: this.opts.topics },
            { protocolVersion: PROTOCOL_VERSION }));
        const gone = new Promise((resolve) => socket.once('close', () => resolve('closed')));
        const timeout = (ms) => new Promise((resolve) => { setTimeout(resolve, Math.max(0, ms), 'timeout').unref(); });
        if (await Promise.race([unsubscribed, gone, timeout(deadline - Date.now())]) !== 'unsubscribed') return false;
        let seen = -1;
        let quietSince = Date.now();
        while (Date.now() < deadline) {
            if (this.socket !== socket) return false;
            if (this.counters.messages !== seen || this.inflight > 0) {
                seen = this.counters.messages;
                quietSince = Date.now();
            } else if (Date.now() - quietSince >= quietMs) {
                return true;
            }
            // eslint-disable-next-line no-await-in-loop
            await timeout(Math.min(50, quietMs));
        }
        return false;
    }

    /**
     * Send the PUBACKs that are due and a DISCONNECT, then close. The session is kept (the
     * broker holds what it has for us until we are back) unless `endSession`.
     * Resolves when the socket is closed (or after timeoutMs).
     */
    stop(timeoutMs = 2000, { endSession = false } = {}) {
        this.stopping = true;
        clearTimeout(this.reconnectTimer);
        this.reconnectTimer = null;
        const socket = this.socket;
        if (!socket) return Promise.resolve();
        return new Promise((resolve) => {
            const timer = setTimeout(() => socket.destroy(), timeoutMs);
            socket.once('close', () => {
                clearTimeout(timer);
                resolve();
            });
            if (this.connected) {
                this.flush();
                // reason 0: normal disconnection; the session is kept unless its expiry becomes 0
                const disconnect = { cmd: 'disconnect', reasonCode: 0 };
                if (endSession) disconnect.properties = { sessionExpiryInterval: 0 };
                socket.end(mqttPacket.generate(disconnect, { protocolVersion: PROTOCOL_VERSION }));
            } else {
                socket.destroy();
            }
        });
    }

    // --- connection -------------------------------------------------------------------

    connect() {
        this.reconnectTimer = null;
        if (this.stopping) return;
        const o = this.opts;
        const socket = o.tls
            ? tls.connect({ host: o.host, port: o.port, servername: net.isIP(o.host) ? undefined : o.host, ...o.tls })
            : net.connect({ host: o.host, port: o.port });
        this.socket = socket;
        this.connected = false;
        this.unparsed = null; // bytes received and not handled yet
        this.gathering = null; // the pieces of a large packet still arriving
        this.flowPaused = false;
        this.controlParser = mqttPacket.parser({ protocolVersion: PROTOCOL_VERSION });
        this.controlParser.on('packet', (packet) => this.onControlPacket(packet));
        this.controlParser.on('error', (err) => this.protocolError(`broker sent a packet that cannot be decoded: ${err.message}`));
        // PUBACKs are written in batches already; Nagle would only delay them.
        socket.setNoDelay(true);
        this.lastReceivedMs = Date.now();
        this.lastSentMs = Date.now();
        this.connectTimer = setTimeout(() => socket.destroy(new Error(`no CONNACK within ${o.connectTimeoutMs} ms`)), o.connectTimeoutMs);
        socket.once(o.tls ? 'secureConnect' : 'connect', () => {
            const connect = {
                cmd: 'connect',
                protocolId: 'MQTT',
                protocolVersion: PROTOCOL_VERSION,
                clientId: o.clientId,
                clean: false,
                keepalive: o.keepaliveS,
                properties: {
                    sessionExpiryInterval: o.sessionExpiryS,
                    receiveMaximum: o.receiveMaximum,
                },
            };
            if (o.username) connect.username = o.username;
            if (o.password) connect.password = Buffer.from(o.password);
            this.send(mqttPacket.generate(connect, { protocolVersion: PROTOCOL_VERSION }));
        });
        socket.on('data', (chunk) => this.onData(chunk));
        socket.on('error', (err) => { this.lastError = err; });
        socket.on('close', () => this.onClose(socket));
        if (this.paused) socket.pause();
    }

    onClose(socket) {
        if (socket !== this.socket) return;
        clearTimeout(this.connectTimer);
        clearInterval(this.keepaliveTimer);
        this.keepaliveTimer = null;
        const wasConnected = this.connected;
        this.connected = false;
        this.socket = null;
        // Held PUBACKs of this connection are void: the broker resends those messages.
        this.head = this.tail;
        const error = this.lastError;
        const reason = this.disconnectReason;
        this.lastError = null;
        this.disconnectReason = null;
        this.emit('disconnect', { error, reason, wasConnected, stopping: this.stopping });
        if (this.stopping) return;
        const delay = this.reconnectDelayMs;
        this.reconnectDelayMs = Math.min(this.reconnectDelayMs * 2, this.opts.reconnectMaxMs);
        // jitter, so that workers restarted together do not reconnect in lockstep
        this.reconnectTimer = setTimeout(() => this.connect(), delay * (0.75 + Math.random() * 0.5));
    }

    protocolError(message) {
        if (!this.socket) return;
        this.emit('warn', message);
        this.socket.destroy(new Error(message));
    }

    send(buffer) {
        this.lastSentMs = Date.now();
        this.socket.write(buffer);
    }

    // --- incoming bytes ---------------------------------------------------------------

    onData(chunk) {
        this.lastReceivedMs = Date.now();
        if (this.gathering !== null) {
            // a large packet arriving in pieces: gather them, and copy once when complete
            this.gathering.push(chunk);
            this.gatheredBytes += chunk.length;
            if (this.gatheredBytes < this.gatherNeeded) return;
            this.unparsed = Buffer.concat(this.gathering, this.gatheredBytes);
            this.gathering = null;
        } else if (this.unparsed !== null) {
            this.unparsed = Buffer.concat([this.unparsed, chunk]);
        } else {
            this.unparsed = chunk;
        }
        this.drain();
    }

    /**
     * Handle the complete packets in `unparsed`: PUBLISH decoded here, the rest by
     * mqtt-packet. Stops before a PUBLISH while `receiveMaximum` messages are held, and stops
     * reading the socket: TCP then holds the broker back. Resumed by flush().
     */
    drain() {
        const buf = this.unparsed;
        if (buf === null) return;
        const end = buf.length;
        let pos = 0;
        while (pos < end && this.socket !== null) {
            const first = buf[pos];
            // remaining length: 1 to 4 bytes, 7 bits each
            let length = 0;
            let multiplier = 1;
            let i = pos + 1;
            let byte = 128;
            while (byte & 128) {
                if (i >= end) break;
                if (i - pos > 4) {
                    this.protocolError('broker sent a packet with a malformed length');
                    return;
                }
                byte = buf[i++];
                length += (byte & 127) * multiplier;
                multiplier *= 128;
            }
            if (byte & 128) break; // the length is not complete yet
            const packetEnd = i + length;
            if (packetEnd > end) {
                if (length > 65536) {
                    this.gathering = [buf.subarray(pos)];
                    this.gatheredBytes = end - pos;
                    this.gatherNeeded = packetEnd - pos;
                    this.unparsed = null;
                    return;
                }
                break;
            }
            if (first >> 4 === PUBLISH) {
                if (this.tail - this.head >= this.opts.receiveMaximum) {
                    this.holdBack();
                    break;
                }
                this.onPublish(buf, first, i, packetEnd);
            } else {
                this.controlParser.parse(buf.subarray(pos, packetEnd));
            }
            pos = packetEnd;
        }
        if (pos >= end) {
            this.unparsed = null;
        } else if (pos > 0) {
            // keep only the rest; a copy, so a small remainder does not pin a large chunk
            this.unparsed = Buffer.from(buf.subarray(pos));
        }
    }

    // Flow control that does not depend on the broker: Mosquitto 2.0.11 honours our receive
    // maximum for the first window only (each PUBACK lets it move up to that many more queued
    // messages in flight: db__message_delete_outgoing, eclipse-mosquitto issue #2301), so the
    // bound on what we hold is kept here, by not reading.
    holdBack() {
        if (this.flowPaused) return;
        this.flowPaused = true;
        this.counters.heldBack += 1;
        this.socket.pause();
    }

    releaseHold() {
        this.flowPaused = false;
        this.drain();
        if (!this.flowPaused && !this.paused && this.socket) this.socket.resume();
    }

    onPublish(buf, first, start, end) {
        if (!this.connected) {
            this.protocolError('broker sent PUBLISH before CONNACK');
            return;
        }
        const qos = (first >> 1) & 3;
        if (qos > 1) {
            // we subscribe with QoS 1; a broker must not send more than that
            this.protocolError(`broker sent a QoS ${qos} message on a QoS ${this.opts.qos} subscription`);
            return;
        }
        let p = start;
        if (end - p < 2) {
            this.protocolError('broker sent a truncated PUBLISH');
            return;
        }
        const topicLength = (buf[p] << 8) | buf[p + 1];
        p += 2;
        const topicEnd = p + topicLength;
        if (topicLength === 0 || topicEnd > end) {
            // topic aliases are never enabled (no topicAliasMaximum in CONNECT)
            this.protocolError('broker sent a PUBLISH without a topic');
            return;
        }
        const topic = buf.toString('utf8', p, topicEnd);
        p = topicEnd;
        let packetId = -1;
        if (qos === 1) {
            packetId = (buf[p] << 8) | buf[p + 1];
            p += 2;
        }
        // properties: skipped (their length, then that many bytes)
        let propertiesLength = 0;
        let multiplier = 1;
        let byte = 128;
        while ((byte & 128) && p < end) {
            byte = buf[p++];
            propertiesLength += (byte & 127) * multiplier;
            multiplier *= 128;
        }
        p += propertiesLength;
        if (p > end || (byte & 128)) {
            this.protocolError('broker sent a truncated PUBLISH');
            return;
        }
        // Every message takes a place in the ring, QoS 0 too (without a PUBACK to send): the
        // bound on what the ingest holds counts all of them.
        const ticket = this.tail++;
        const slot = ticket & this.mask;
        this.packetIds[slot] = packetId;
        this.acked[slot] = 0;
        this.counters.messages += 1;
        this.onMessage(topic, buf.subarray(p, end), ticket, packetId, (first & 8) !== 0);
    }

    onControlPacket(packet) {
        switch (packet.cmd) {
        case 'connack':
            this.onConnack(packet);
            break;
        case 'suback': {
            const codes = packet.granted || packet.reasonCodes || [];
            const failed = codes.filter((c) => c >= 0x80);
            if (failed.length > 0) {
                this.emit('warn', `the broker refused the subscription to ${this.opts.topics.join(', ')}: ${failed.map(reasonText).join(', ')}`);
            }
            this.emit('subscribed', codes);
            break;
        }
        case 'unsuback':
            if (packet.messageId === 2 && this.onUnsuback) this.onUnsuback('unsubscribed');
            if (packet.messageId === 2) this.onUnsuback = null;
            break;
        case 'pingresp':
            this.onPingresp();
            break;
        case 'disconnect':
            this.disconnectReason = reasonText(packet.reasonCode || 0);
            break;
        default:
            this.protocolError(`broker sent an unexpected ${packet.cmd} packet`);
        }
    }

    onConnack(packet) {
        clearTimeout(this.connectTimer);
        const code = packet.reasonCode || 0;
        if (code !== 0) {
            this.disconnectReason = `connection refused: ${reasonText(code)}`;
            this.socket.destroy();
            return;
        }
        this.connected = true;
        this.reconnectDelayMs = this.opts.reconnectInitialMs;
        this.confirmed = this.tail;
        this.pingMarks = [];
        this.counters.connects += 1;
        const props = packet.properties || {};
        const keepaliveS = props.serverKeepAlive !== undefined ? props.serverKeepAlive : this.opts.keepaliveS;
        this.startKeepalive(keepaliveS);
        // Subscribe on every connect: a session that the broker lost (or never had) gets its
        // subscription back; for a present session it is a no-op. (Mosquitto 2.0.11 does not
        // restore a session's *shared* subscriptions after a restart: doc/ingest.md.)
        this.send(mqttPacket.generate({
            cmd: 'subscribe',
            messageId: 1,
            subscriptions: this.opts.topics.map((topic) => ({ topic, qos: this.opts.qos, nl: false, rap: false, rh: 1 })),
        }, { protocolVersion: PROTOCOL_VERSION }));
        // Then drop what the session may still hold from an earlier setting (the exclusive
        // form after a switch to the shared one, or back): both would deliver every message.
        // After the SUBSCRIBE, not before: the broker handles them one at a time, and in
        // between a message would have no subscription of ours (lost) rather than two (a
        // duplicate at worst).
        if (this.opts.staleTopics && this.opts.staleTopics.length > 0) {
            this.send(mqttPacket.generate({
                cmd: 'unsubscribe', messageId: 3, unsubscriptions: this.opts.staleTopics,
            }, { protocolVersion: PROTOCOL_VERSION }));
        }
        this.emit('connect', { sessionPresent: Boolean(packet.sessionPresent), firstTicket: this.tail });
    }

    startKeepalive(keepaliveS) {
        clearInterval(this.keepaliveTimer);
        if (!keepaliveS) return;
        const keepaliveMs = keepaliveS * 1000;
        const socket = this.socket;
        this.keepaliveTimer = setInterval(() => {
            const now = Date.now();
            const reading = !this.paused && !this.flowPaused;
            if (!reading) this.lastReceivedMs = now; // silence we caused says nothing of the broker
            if (now - this.lastReceivedMs > keepaliveMs * 1.5) {
                socket.destroy(new Error(`nothing from the broker for ${Math.round((now - this.lastReceivedMs) / 1000)} s`));
            } else if (now - this.lastSentMs >= keepaliveMs / 2) {
                this.sendPing();
            }
        }, keepaliveMs / 4);
        this.keepaliveTimer.unref();
    }

    // --- acknowledgements -------------------------------------------------------------

    /**
     * Release the acknowledged messages at the head of the ring, and write their PUBACKs (QoS
     * 1 ones) in one socket write. Then read on if reading was held back.
     */
    flush() {
        this.flushScheduled = false;
        if (!this.connected) return;
        let n = 0;
        let pubacks = 0;
        while (this.head + n < this.tail && this.acked[(this.head + n) & this.mask] === 1) {
            if (this.packetIds[(this.head + n) & this.mask] >= 0) pubacks += 1;
            n += 1;
        }
        if (n === 0) return;
        if (pubacks > 0) {
            // PUBACK, reason Success, no properties (MQTT 5, 3.4.2.1): 0x40, length 2, packet id
            const out = Buffer.allocUnsafe(pubacks * 4);
            let o = 0;
            for (let k = 0; k < n; k += 1) {
                const packetId = this.packetIds[(this.head + k) & this.mask];
                if (packetId < 0) continue;
                out[o] = 0x40;
                out[o + 1] = 2;
                out[o + 2] = packetId >> 8;
                out[o + 3] = packetId & 0xff;
                o += 4;
            }
            this.send(out);
            this.counters.acked += pubacks;
        }
        this.head += n;
        if (this.pingMarks.length === 0) this.sendPing();
        if (this.flowPaused) this.releaseHold();
    }

    /** A PINGREQ: keepalive, and a barrier whose PINGRESP confirms every PUBACK before it. */
    sendPing() {
        this.pingMarks.push(this.head);
        this.send(PINGREQ);
    }

    onPingresp() {
        const mark = this.pingMarks.shift();
        if (mark === undefined) return;
        if (mark > this.confirmed) {
            this.confirmed = mark;
            this.onConfirmed(mark);
        }
        // the next barrier, if PUBACKs went out meanwhile
        if (this.pingMarks.length === 0 && this.head > this.confirmed) this.sendPing();
        if (this.flowPaused) this.releaseHold();
    }

    allocateRing(minimum) {
        let size = 1;
        while (size < minimum) size *= 2;
        this.ringSize = size;
        this.mask = size - 1;
        this.packetIds = new Int32Array(size); // -1: QoS 0, nothing to acknowledge
        this.acked = new Uint8Array(size);
    }
}

module.exports = { AckingConsumer, DEFAULTS, MAX_RECEIVE_MAXIMUM };
