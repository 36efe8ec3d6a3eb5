'use strict';
// The MQTT consumer against a real Mosquitto (started here on a free port, anonymous, for
// the test's lifetime; skipped with a message when there is no mosquitto binary):
// PUBACK only when asked, in arrival order, one write per flush; the bound on held
// messages; redelivery with DUP and the same packet id after a reconnect; the session kept.
const { describe, it, before, after, afterEach, test } = require('node:test');
const assert = require('node:assert/strict');
const { AckingConsumer } = require('../nodes/node-red-contrib-octopus/lib/acking-consumer');
const { mosquittoBinary, startMosquitto, testClient } = require('./helpers/mosquitto');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(probe, what, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        if (probe()) return;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        // eslint-disable-next-line no-await-in-loop
        await sleep(10);
    }
}

/** Packet ids of the PUBACKs in the bytes the consumer writes, one array per socket write. */
function recordPubacks(consumer) {
    const writes = [];
    const send = consumer.send.bind(consumer);
    consumer.send = (buffer) => {
        if (buffer[0] === 0x40) {
            const ids = [];
            for (let o = 0; o < buffer.length; o += 4) ids.push(buffer.readUInt16BE(o + 2));
            writes.push(ids);
        }
        send(buffer);
    };
    return writes;
}

let counter = 0;
const running = new Set(); // stopped after each test, even a failed one (or node --test waits)
// Each test has a shared-subscription group of its own: Mosquitto 2.0.11 keeps giving an
// offline member (a stopped consumer whose session lives on) its share of the messages.
function consumer(broker, opts = {}) {
    const got = [];
    counter += 1;
    const c = new AckingConsumer({
        host: '127.0.0.1',
        port: broker.port,
        clientId: opts.clientId || `consumer-${process.pid}-${counter}`,
        topics: [`$share/test${opts.group || counter}/#`],
        sessionExpiryS: 60,
        receiveMaximum: 100,
        reconnectInitialMs: 50,
        onMessage: (topic, payload, ticket, packetId, dup) => got.push({
            topic, payload: payload.toString(), ticket, packetId, dup,
        }),
        ...opts,
    });
    const connects = [];
    c.on('connect', (e) => connects.push({ sessionPresent: e.sessionPresent }));
    c.start();
    running.add(c);
    return { c, got, connects };
}

if (!mosquittoBinary()) {
    test('the consumer against a real Mosquitto', {
        skip: 'no mosquitto binary (set OCTOPUS_TEST_MOSQUITTO, or install mosquitto): the consumer is not tested against a broker',
    }, () => {});
} else describe('the consumer against a real Mosquitto', () => {
    let broker;
    let pub;
    before(async () => {
        broker = await startMosquitto(['max_queued_messages 100000']);
        pub = await testClient(broker.port);
    });
    afterEach(async () => {
        await Promise.all([...running].map((c) => c.stop()));
        running.clear();
    });
    after(async () => {
        if (pub) pub.close();
        if (broker) await broker.stop();
    });

    async function publish(n, topic = (i) => `s/r/d${i % 3}/a`, qos = 1) {
        const sent = [];
        for (let i = 0; i < n; i += 1) sent.push(pub.publish(topic(i), String(i), qos));
        await Promise.all(sent);
    }

    it('sends no PUBACK before ack(): the broker sends the messages again after a reconnect', async () => {
        const { c, got, connects } = consumer(broker);
        await waitFor(() => connects.length === 1, 'the connection');
        await sleep(50); // the SUBACK
        await publish(5);
        await waitFor(() => got.length === 5, '5 messages');
        assert.ok(got.every((m) => m.packetId > 0 && !m.dup));
        c.ack(got[0].ticket);
        c.ack(got[1].ticket);
        await sleep(50);
        c.reconnect('test');
        await waitFor(() => got.length === 8, 'the 3 unacknowledged ones again');
        assert.deepEqual(connects[1], { sessionPresent: true });
        const again = got.slice(5);
        assert.deepEqual(again.map((m) => m.payload), ['2', '3', '4']);
        assert.deepEqual(again.map((m) => m.packetId), got.slice(2, 5).map((m) => m.packetId), 'same packet ids');
        assert.ok(again.every((m) => m.dup), 'DUP set');
        assert.deepEqual(again.map((m) => m.topic), got.slice(2, 5).map((m) => m.topic));
        // acknowledging a ticket of the dropped connection does nothing
        c.ack(got[2].ticket);
        assert.equal(c.inflight, 3);
        for (const m of again) c.ack(m.ticket);
        await waitFor(() => c.inflight === 0, 'everything acknowledged');
        await sleep(50);
        c.reconnect('test');
        await waitFor(() => connects.length === 3, 'the third connection');
        await sleep(200);
        assert.equal(got.length, 8, 'nothing is sent again once acknowledged');
        await c.stop();
    });

    it('sends PUBACKs in arrival order, in one socket write, however ack() is called', async () => {
        const { c, got, connects } = consumer(broker);
        const writes = recordPubacks(c);
        await waitFor(() => connects.length === 1, 'the connection');
        await sleep(50);
        await publish(10);
        await waitFor(() => got.length === 10, '10 messages');
        for (let i = 9; i >= 1; i -= 1) c.ack(got[i].ticket);
        await sleep(50);
        assert.deepEqual(writes, [], 'nothing while the first is unacknowledged');
        assert.equal(c.inflight, 10);
        c.ack(got[0].ticket);
        await sleep(50);
        assert.deepEqual(writes, [got.map((m) => m.packetId)]);
        assert.equal(c.inflight, 0);
        assert.equal(c.counters.acked, 10);
        await c.stop();
    });

    it('learns, with a PINGREQ after its PUBACKs, when the broker has processed them', async () => {
        const confirmations = [];
        const { c, got, connects } = consumer(broker, { onConfirmed: (t) => confirmations.push(t) });
        await waitFor(() => connects.length === 1, 'the connection');
        await sleep(50);
        await publish(20);
        await waitFor(() => got.length === 20, '20 messages');
        assert.equal(c.unconfirmed, 0);
        for (const m of got.slice(0, 15)) c.ack(m.ticket);
        await waitFor(() => confirmations.length > 0 && confirmations[confirmations.length - 1] === got[14].ticket + 1,
            'confirmation of the first 15');
        assert.equal(c.unconfirmed, 0);
        assert.equal(c.inflight, 5);
        await c.stop();
    });

    it('holds at most receiveMaximum messages; the broker keeps the rest and sends them as they are acknowledged', async () => {
        const { c, got, connects } = consumer(broker, { receiveMaximum: 50 });
        await waitFor(() => connects.length === 1, 'the connection');
        await sleep(50);
        await publish(500);
        await waitFor(() => got.length === 50, '50 messages');
        await sleep(200);
        assert.equal(got.length, 50, 'the broker stops at the receive maximum');
        assert.equal(c.counters.heldBack, 0, 'Mosquitto itself honours the first window');
        for (let i = 0; i < 10; i += 1) c.ack(got[i].ticket);
        await waitFor(() => got.length === 60, '10 more');
        await sleep(200);
        // Mosquitto 2.0.11 now sends more than it may (eclipse-mosquitto #2301): the consumer
        // stops reading, so it still holds no more than 50.
        assert.equal(got.length, 60);
        assert.equal(c.inflight, 50);
        // all of them, in order, as they come
        let acked = 10;
        while (acked < 500) {
            const upTo = got.length;
            for (; acked < upTo; acked += 1) c.ack(got[acked].ticket);
            assert.ok(c.inflight <= 50, `held ${c.inflight}`);
            // eslint-disable-next-line no-await-in-loop
            await waitFor(() => got.length > upTo || acked === 500, 'more messages');
        }
        assert.deepEqual(got.map((m) => Number(m.payload)), [...Array(500).keys()], 'all, once, in order');
        await c.stop();
    });

    it('gives QoS 0 messages a place in the order (no PUBACK) and takes topics that start with /', async () => {
        const { c, got, connects } = consumer(broker);
        const writes = recordPubacks(c);
        await waitFor(() => connects.length === 1, 'the connection');
        await sleep(50);
        await pub.publish('/leading/slash', 'x', 1);
        await pub.publish('a/b/c/d', 'y', 0);
        await pub.publish('a/b/c/d', 'z', 1);
        await waitFor(() => got.length === 3, '3 messages');
        assert.deepEqual(got.map((m) => [m.topic, m.payload, m.packetId >= 0]),
            [['/leading/slash', 'x', true], ['a/b/c/d', 'y', false], ['a/b/c/d', 'z', true]]);
        c.ack(got[0].ticket);
        c.ack(got[2].ticket);
        await sleep(50);
        assert.deepEqual(writes, [[got[0].packetId]], 'z waits for the QoS 0 message before it');
        c.ack(got[1].ticket);
        await sleep(50);
        assert.deepEqual(writes, [[got[0].packetId], [got[2].packetId]]);
        await c.stop();
    });

    it('keeps the session: what is published while it is away arrives when it is back', async () => {
        const clientId = `session-${process.pid}`;
        const first = consumer(broker, { clientId, group: 'session' });
        await waitFor(() => first.connects.length === 1, 'the connection');
        await sleep(50);
        await first.c.stop();
        await publish(20);
        const second = consumer(broker, { clientId, group: 'session' });
        await waitFor(() => second.got.length === 20, 'the 20 queued messages');
        assert.deepEqual(second.connects[0], { sessionPresent: true });
        for (const m of second.got) second.c.ack(m.ticket);
        await sleep(50);
        await second.c.stop();
    });

    it('takes a payload larger than a socket read, and many small messages in one read', async () => {
        const { c, got, connects } = consumer(broker, { receiveMaximum: 1000 });
        await waitFor(() => connects.length === 1, 'the connection');
        await sleep(50);
        const big = 'x'.repeat(300000);
        await pub.publish('a/b/c/big', big, 1);
        await publish(300, () => 'a/b/c/small', 0);
        await waitFor(() => got.length === 301, 'all messages');
        assert.equal(got[0].payload, big);
        assert.deepEqual(got.slice(1).map((m) => m.payload), [...Array(300).keys()].map(String));
        await c.stop();
    });

    it('reconnects by itself with backoff after the broker restarts', async () => {
        const { c, connects } = consumer(broker);
        const disconnects = [];
        c.on('disconnect', (e) => disconnects.push(e));
        await waitFor(() => connects.length === 1, 'the connection');
        await broker.restart();
        pub = await testClient(broker.port); // the old one went with the broker
        await waitFor(() => connects.length === 2, 'the reconnection', 10000);
        assert.equal(disconnects[0].wasConnected, true);
        assert.deepEqual(connects[1], { sessionPresent: false }, 'this test broker keeps nothing (persistence false)');
        await c.stop();
    });
});
