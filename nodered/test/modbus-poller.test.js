'use strict';
// The device poller (lib/modbus-poller.js) and its connection (lib/modbus-connection.js)
// against Modbus TCP servers in this process: a small one of our own whose faults we choose
// (silence, exceptions, garbage, slowness, dropped connections); modbus-serial's own
// ServerTCP is used in modbus-fleet.test.js.
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const net = require('net');
const { validateProfile } = require('../nodes/node-red-contrib-octopus/lib/modbus-profile');
const { planReads } = require('../nodes/node-red-contrib-octopus/lib/modbus-plan');
const { DevicePoller } = require('../nodes/node-red-contrib-octopus/lib/modbus-poller');
const { ModbusConnection } = require('../nodes/node-red-contrib-octopus/lib/modbus-connection');
const { effectiveTimeout } = require('../nodes/node-red-contrib-octopus/lib/modbus-fleet');
const { parseMeasurement } = require('../nodes/node-red-contrib-octopus/lib/payload');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/**
 * The timeout that 'at once' is told apart from: a stop or close that waited for it would
 * take this long. Not a speed limit (a loaded CI machine is slow, never this slow).
 */
const WAITED_FOR_MS = 10000;

/** Wait until `check()` is true (polling every 5 ms), or fail after `ms`. */
async function until(check, ms = 2000, what = 'condition') {
    const end = Date.now() + ms;
    while (!check()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await sleep(5); // eslint-disable-line no-await-in-loop
    }
}

/**
 * A Modbus TCP device: registers[i] = 1000 + i, bits alternate. `mode` picks how it answers:
 * ok | silent | exception | close | garbage: short (a frame of the wrong length), bad-count
 * (a byte count that disagrees with the data), wrong-tid, wrong-unit.
 */
class FakeDevice {
    constructor() {
        this.mode = 'ok';
        this.delayMs = 0;
        this.requests = 0;
        this.connections = 0;
        this.sockets = new Set();
        this.server = net.createServer((socket) => this.accept(socket));
    }

    listen() {
        return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve(this.server.address().port)));
    }

    accept(socket) {
        this.connections += 1;
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {});
        let buf = Buffer.alloc(0);
        socket.on('data', (data) => {
            buf = Buffer.concat([buf, data]);
            while (buf.length >= 12) {
                const frame = buf.subarray(0, 6 + buf.readUInt16BE(4));
                buf = buf.subarray(frame.length);
                this.requests += 1;
                this.lastRequestAt = Date.now();
                const answer = this.answer(frame);
                if (this.mode === 'close') socket.destroy();
                else if (answer) setTimeout(() => socket.write(answer), this.delayMs);
            }
        });
    }

    answer(frame) {
        const [tid, unit, fc] = [frame.readUInt16BE(0), frame[6], frame[7]];
        const [start, count] = [frame.readUInt16BE(8), frame.readUInt16BE(10)];
        let pdu;
        if (this.mode === 'silent' || this.mode === 'close') return null;
        if (this.mode === 'exception') {
            pdu = Buffer.from([fc | 0x80, 2]);
        } else if (fc === 3 || fc === 4) {
            const n = this.mode === 'short' ? count - 1 : count;
            pdu = Buffer.alloc(2 + 2 * n);
            pdu[0] = fc;
            pdu[1] = this.mode === 'bad-count' ? 2 * n + 2 : 2 * n;
            for (let i = 0; i < n; i += 1) pdu.writeUInt16BE(1000 + start + i, 2 + 2 * i);
        } else {
            pdu = Buffer.alloc(2 + Math.ceil(count / 8));
            pdu[0] = fc;
            pdu[1] = Math.ceil(count / 8);
            for (let i = 0; i < count; i += 1) if ((start + i) % 2 === 0) pdu[2 + (i >> 3)] |= 1 << (i & 7);
        }
        const mbap = Buffer.alloc(7);
        mbap.writeUInt16BE(this.mode === 'wrong-tid' ? (tid + 7) & 0xffff : tid, 0);
        mbap.writeUInt16BE(pdu.length + 1, 4);
        mbap[6] = this.mode === 'wrong-unit' ? unit + 1 : unit;
        return Buffer.concat([mbap, pdu]);
    }

    close() {
        for (const s of this.sockets) s.destroy();
        return new Promise((resolve) => this.server.close(resolve));
    }
}

const PROFILE = validateProfile({
    attributes: [
        { name: 'power', register: 'holding', address: 0, type: 'uint16', scale: 0.1, unit: 'W' },
        { name: 'energy', register: 'input', address: 10, type: 'uint32' },
        { name: 'breaker', register: 'coil', address: 4 },
    ],
}, 'test.json').profile;

const cleanup = [];
afterEach(async () => {
    await Promise.all(cleanup.splice(0).map((f) => f()));
});

/** A started poller for `port`; its messages in `.sent`, stopped after the test. */
function poller(port, { interval = 100, plan = planReads(PROFILE.attributes), offlineAfter = 2, backoffMaxMs = 1000, id = 1, connect,
    timeoutMs = effectiveTimeout(1000, interval) } = {}) {
    const sent = [];
    const p = new DevicePoller({
        device: { id, site: 'plant', room: 'hall', name: `meter${id}`, host: '127.0.0.1', port, unit_id: 3, poll_interval_ms: interval },
        plan,
        timeoutMs,
        backoffMaxMs,
        offlineAfter,
        publish: (msgs) => sent.push(...msgs),
        connect,
    });
    p.sent = sent;
    p.statuses = () => sent.filter((m) => m.topic.endsWith('/status')).map((m) => m.payload);
    p.start();
    cleanup.push(() => p.stop());
    return p;
}

async function device() {
    const d = new FakeDevice();
    const port = await d.listen();
    cleanup.push(() => d.close());
    return { d, port };
}

describe('modbus poller', () => {
    it('publishes each attribute on the topic contract, with the time the request went out', async () => {
        const { port } = await device();
        const before = Date.now();
        const p = poller(port);
        await until(() => p.sent.length >= 4, 2000, 'the first poll');
        const after = Date.now();
        assert.deepEqual(p.sent[0], { topic: 'plant/hall/meter1/status', payload: 'online', qos: 1, retain: true });
        const readings = p.sent.slice(1, 4);
        assert.deepEqual(readings.map((m) => [m.topic, m.qos, m.retain]),
            [['plant/hall/meter1/breaker', 1, false], ['plant/hall/meter1/power', 1, false], ['plant/hall/meter1/energy', 1, false]]);
        const payloads = readings.map((m) => JSON.parse(m.payload));
        // coil 4 is on (even), holding 0 = 1000 × 0.1, input 10-11 = 1010 · 65536 + 1011
        assert.deepEqual(payloads.map((x) => [x.value, x.unit]), [[true, undefined], [100, 'W'], [1010 * 65536 + 1011, undefined]]);
        for (const x of payloads) assert.ok(x.ts >= before && x.ts <= after, 'ts: epoch ms of the poll');
        // what the ingest will make of them (lib/payload.js)
        assert.deepEqual(readings.map((m) => parseMeasurement(m.payload, after)),
            payloads.map((x) => ({ value: x.value, tsMs: x.ts, unit: x.unit || null })));
        assert.equal(p.snapshot().ok >= 1, true);
        assert.equal(p.snapshot().status, 'online');
    });

    it('counts a silent device\'s timeouts, says offline after N failed polls and online when it answers again', async () => {
        const { d, port } = await device();
        const p = poller(port, { interval: 60, offlineAfter: 3 });
        await until(() => p.statuses().length === 1, 2000, 'online');
        d.mode = 'silent';
        await until(() => p.statuses().length === 2, 2000, 'offline');
        const s = p.snapshot();
        assert.equal(s.timeouts, 3, 'offline after exactly three failed polls');
        assert.equal(s.consecutive_failures, 3);
        assert.equal(s.overflows, 0, 'a request times out before the next tick');
        assert.match(s.last_error, /^timeout: reading coil 4: no answer in 48 ms$/);
        assert.ok(d.connections >= 3, 'the connection is reopened after each timeout');
        d.mode = 'ok';
        await until(() => p.statuses().length === 3, 2000, 'online again');
        assert.deepEqual(p.statuses(), ['online', 'offline', 'online'], 'published on changes only');
        assert.equal(p.snapshot().consecutive_failures, 0);
    });

    it('counts exception responses as exceptions and keeps the connection', async () => {
        const { d, port } = await device();
        d.mode = 'exception';
        const p = poller(port, { interval: 50 });
        await until(() => p.snapshot().exceptions >= 4, 2000, 'exceptions');
        const s = p.snapshot();
        assert.equal(s.timeouts + s.garbage + s.connection_errors, 0);
        assert.match(s.last_error, /^exception: reading coil 4: Modbus exception 2: Illegal data address/);
        assert.equal(d.connections, 1);
        assert.deepEqual(p.statuses(), ['offline']);
    });

    it('counts answers that do not parse, or answer no request, as garbage and reconnects', async () => {
        const { d, port } = await device();
        d.mode = 'short';
        const plan = planReads(PROFILE.attributes.filter((a) => a.register === 'holding'));
        const p = poller(port, { interval: 50, plan });
        await until(() => p.snapshot().garbage >= 2, 2000, 'garbage');
        assert.match(p.snapshot().last_error, /^garbage: reading holding 0: Data length error/);
        assert.ok(d.connections >= 2);
        d.mode = 'wrong-tid';
        await until(() => p.snapshot().garbage >= 4, 2000, 'more garbage');
        const s = p.snapshot();
        assert.match(s.last_error, /^garbage: reading holding 0: an answer that matches no request/);
        d.mode = 'wrong-unit';
        await until(() => p.snapshot().garbage >= 6, 2000, 'garbage from another unit');
        assert.match(p.snapshot().last_error, /^garbage: reading holding 0: Unexpected data error, expected address 3 got 4/);
        d.mode = 'bad-count';
        await until(() => p.snapshot().garbage >= 8, 2000, 'garbage with a lying byte count');
        assert.match(p.snapshot().last_error, /^garbage: reading holding 0: the answer holds 2 values for 1/);
        assert.equal(p.snapshot().timeouts + p.snapshot().exceptions + p.snapshot().connection_errors, 0);
        assert.equal(s.timeouts + s.exceptions + s.connection_errors, 0);
    });

    it('counts a skipped tick as an overflow when a poll outlasts the interval', async () => {
        const { d, port } = await device();
        d.delayMs = 40; // three requests (coil, holding, input): 120 ms for a 100 ms interval
        const p = poller(port, { interval: 100 });
        await until(() => p.snapshot().overflows >= 2 && p.snapshot().ok >= 2, 3000, 'overflows');
        const s = p.snapshot();
        assert.equal(s.timeouts, 0);
        assert.ok(s.polls - s.ok <= 1, 'a skipped tick is not a poll (one may be in flight)');
    });

    it('counts connection errors on every tick but reconnects with backoff', async () => {
        const { d, port } = await device();
        await d.close(); // nothing listens there any more
        let attempts = 0;
        const connect = (o) => { attempts += 1; return new ModbusConnection(o); };
        const p = poller(port, { interval: 20, backoffMaxMs: 80, connect });
        await until(() => p.snapshot().polls >= 16, 2000, '16 ticks');
        const s = p.snapshot();
        assert.ok(s.polls - s.connection_errors <= 1, 'each tick is a failed poll (one may be in flight)');
        // attempts at ticks 0, 1, 3, 7, 11, 15: the waits double from one interval up to 80 ms
        assert.ok(attempts >= 5 && attempts <= 7, `${attempts} connect attempts`);
        assert.match(s.last_error, /^connection: connect to 127\.0\.0\.1:\d+: ECONNREFUSED$/);
        assert.deepEqual(p.statuses(), ['offline']);
    });

    it('sees a connection dropped under a request as a connection error at once, not a timeout', async () => {
        const { d, port } = await device();
        const p = poller(port, { interval: 300 });
        await until(() => p.snapshot().ok === 1, 2000, 'a good poll');
        d.mode = 'close';
        await until(() => p.snapshot().connection_errors === 1, 2000, 'the error');
        const noticedAfter = Date.now() - d.lastRequestAt;
        assert.ok(noticedAfter < 100, `noticed ${noticedAfter} ms after the request, not at its 240 ms timeout`);
        assert.equal(p.snapshot().timeouts, 0);
        assert.match(p.snapshot().last_error, /^connection: connection (closed by the device|ECONNRESET)/);
    });

    it('keeps its schedule: 20 ticks at 50 ms without drift', async () => {
        const { port } = await device();
        const plan = planReads(PROFILE.attributes.filter((a) => a.register === 'holding'));
        const p = poller(port, { interval: 50, plan });
        await until(() => p.snapshot().ok >= 21, 3000, '21 polls');
        const ts = p.sent.filter((m) => m.topic.endsWith('/power')).map((m) => JSON.parse(m.payload).ts);
        const drift = ts[20] - ts[0] - 20 * 50;
        assert.ok(Math.abs(drift) <= 10, `20 ticks took ${ts[20] - ts[0]} ms`);
        ts.slice(0, 21).forEach((t, k) => assert.ok(t - ts[0] - k * 50 <= 15, `tick ${k} at +${t - ts[0]} ms`));
        assert.ok(p.snapshot().late_ms_max <= 15, `late_ms_max ${p.snapshot().late_ms_max}`);
    });

    it('is not delayed by a hung device or a slow one', async () => {
        const hung = await device();
        hung.d.mode = 'silent';
        const slow = await device();
        slow.d.delayMs = 35;
        const good = await device();
        const plan = planReads(PROFILE.attributes.filter((a) => a.register === 'holding'));
        const others = [poller(hung.port, { interval: 50, plan, id: 2 }), poller(slow.port, { interval: 50, plan, id: 3 })];
        const p = poller(good.port, { interval: 50, plan, id: 1 });
        await sleep(1000);
        const s = p.snapshot();
        assert.ok(s.ok >= 18, `${s.ok} good polls in 1 s at 50 ms`);
        assert.ok(s.polls - s.ok <= 1, 'every poll good (one may be in flight)');
        assert.ok(s.late_ms_max <= 15, `the good device's ticks were up to ${s.late_ms_max} ms late`);
        assert.ok(others[0].snapshot().timeouts >= 10);
        assert.ok(others[1].snapshot().ok >= 10);
    });

    it('gives up a connect at once when closed meanwhile (a stop during a connect)', async () => {
        const { port } = await device();
        const conn = new ModbusConnection({ host: '127.0.0.1', port, unitId: 1, timeoutMs: WAITED_FOR_MS });
        const opening = conn.open();
        conn.close();
        const t0 = Date.now();
        await assert.rejects(opening, (e) => e.kind === 'connection' && /closed before it was made/.test(e.message));
        assert.ok(Date.now() - t0 < WAITED_FOR_MS / 2, 'given up, not left to its timeout');
    });

    it('stops at once, with a request in flight', async () => {
        const { d, port } = await device();
        d.mode = 'silent';
        const p = poller(port, { interval: 1000, timeoutMs: WAITED_FOR_MS });
        await until(() => d.requests === 1, 2000, 'a request');
        const t0 = Date.now();
        await p.stop();
        assert.ok(Date.now() - t0 < WAITED_FOR_MS / 2, 'stopped, not left to the request timeout');
        await sleep(20);
        assert.equal(d.sockets.size, 0, 'connection closed');
        assert.equal(p.snapshot().timeouts + p.snapshot().connection_errors, 0, 'a stopped poll is not counted');
    });
});
