'use strict';
/**
 * The Modbus benchmark's baseline (bench/modbus.py): a bare poller with nothing behind it: no
 * Node-RED, no MQTT, no PostgreSQL, the values not even decoded. It polls the same simulated
 * devices as octopus-modbus does, with the same library (modbus-serial, from nodered/), the
 * same requests (the profile planned by the node's own lib/modbus-plan.js), the same schedule
 * (tick k at start + phase + k × interval on the monotonic clock, the node's phase per device
 * id, a tick skipped while the previous poll runs) and the same request timeout. What
 * octopus-modbus costs beyond this is the price of the path; what this one cannot reach, the
 * simulator or the machine cannot give.
 *
 *     node bench/modbus_baseline.js '{"host": "127.0.0.1", "devices": [[1, 5020], ...],
 *         "intervalMs": 1000, "timeoutMs": 1000, "seconds": 75, "profile": "…/osm27.json",
 *         "out": "…/baseline.json"}'
 *
 * polls for `seconds`, then writes to `out` {polls: {id: [poll time, epoch ms]}, failures,
 * overflows, lateMsMax, errors}: a poll time is when its first request went out, as the node
 * stamps its readings (`ts`), and a poll is listed once all its requests were answered.
 */

const fs = require('fs');
const path = require('path');
const { performance } = require('perf_hooks');

const PACKAGE = path.resolve(__dirname, '../nodered/nodes/node-red-contrib-octopus');
// modbus-serial as Node-RED loads it: nodered/node_modules
const ModbusRTU = require(require.resolve('modbus-serial', { paths: [path.resolve(__dirname, '../nodered')] }));
const { readProfile } = require(`${PACKAGE}/lib/modbus-profile-store`);
const { planReads } = require(`${PACKAGE}/lib/modbus-plan`);
const { phaseOf, effectiveTimeout } = require(`${PACKAGE}/lib/modbus-fleet`);

const READ = { holding: 'readHoldingRegisters', input: 'readInputRegisters', coil: 'readCoils', discrete: 'readDiscreteInputs' };
const START_DELAY_MS = 200; // the first ticks after every connection had its chance to open

class BarePoller {
    constructor({ id, host, port, plan, intervalMs, timeoutMs, result }) {
        Object.assign(this, { id, host, port, plan, intervalMs, timeoutMs, result });
        this.client = null;
        this.inFlight = false;
        this.stopped = false;
        this.polls = [];
        result.polls[id] = this.polls;
    }

    async connect() {
        const client = new ModbusRTU();
        client.on('error', () => {}); // a failed request says what went wrong
        await client.connectTCP(this.host, { port: this.port });
        client.setID(1);
        client.setTimeout(this.timeoutMs);
        this.client = client;
    }

    start(t0) {
        this.startMs = t0 + phaseOf(this.id, this.intervalMs);
        this.tickNo = 0;
        this.arm();
    }

    arm() {
        const due = this.startMs + this.tickNo * this.intervalMs;
        this.timer = setTimeout(() => this.tick(due), Math.max(0, due - performance.now()));
    }

    tick(due) {
        if (this.stopped) return;
        const now = performance.now();
        this.result.lateMsMax = Math.max(this.result.lateMsMax, Math.round(now - due));
        this.tickNo = Math.max(this.tickNo + 1, Math.floor((now - this.startMs) / this.intervalMs) + 1);
        this.arm();
        if (this.inFlight) {
            this.result.overflows += 1;
            return;
        }
        this.inFlight = true;
        this.poll().finally(() => { this.inFlight = false; });
    }

    async poll() {
        try {
            if (!this.client || !this.client.isOpen) await this.connect();
            const ts = Date.now();
            for (const block of this.plan) {
                // eslint-disable-next-line no-await-in-loop
                await this.client[READ[block.register]](block.start, block.count);
            }
            if (!this.stopped) this.polls.push(ts);
        } catch (err) {
            if (this.stopped) return;
            this.result.failures += 1;
            if (this.result.errors.length < 10) this.result.errors.push(`device ${this.id} (port ${this.port}): ${err.message}`);
            if (this.client) this.client.close(() => {});
            this.client = null; // connect again at the next tick
        }
    }

    stop() {
        this.stopped = true;
        clearTimeout(this.timer);
        if (this.client) this.client.close(() => {});
    }
}

async function main() {
    const cfg = JSON.parse(process.argv[2]);
    const { profile, problem } = await readProfile(cfg.profile);
    if (!profile) throw new Error(problem);
    const plan = planReads(profile.attributes);
    const timeoutMs = effectiveTimeout(cfg.timeoutMs, cfg.intervalMs);
    const result = { polls: {}, failures: 0, overflows: 0, lateMsMax: 0, errors: [] };
    const pollers = cfg.devices.map(([id, port]) => new BarePoller({
        id, host: cfg.host, port, plan, intervalMs: cfg.intervalMs, timeoutMs, result,
    }));
    // Connect first, as the node's pollers are all connected once polling is under way; a
    // device that refuses is tried again at each of its ticks.
    await Promise.all(pollers.map((p) => p.connect().catch(() => {})));
    const t0 = performance.now() + START_DELAY_MS;
    for (const p of pollers) p.start(t0);
    console.log(`polling ${pollers.length} devices every ${cfg.intervalMs} ms for ${cfg.seconds} s: ` +
        `${plan.length} requests per poll, timeout ${timeoutMs} ms`);
    await new Promise((resolve) => { setTimeout(resolve, cfg.seconds * 1000); });
    for (const p of pollers) p.stop();
    fs.writeFileSync(cfg.out, JSON.stringify(result));
    console.log(`done: ${Object.values(result.polls).reduce((n, l) => n + l.length, 0)} polls, ` +
        `${result.failures} failures, ${result.overflows} overflows`);
}

main().then(() => process.exit(0), (err) => {
    console.error(`modbus baseline failed: ${err.stack || err}`);
    process.exit(1);
});
