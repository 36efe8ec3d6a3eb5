'use strict';
/**
 * A real Mosquitto for the consumer's tests, started on a free port with a throwaway
 * configuration (anonymous access: it listens on 127.0.0.1 only, for the test's lifetime),
 * and a minimal MQTT publisher/subscriber built on mqtt-packet.
 *
 * The binary is OCTOPUS_TEST_MOSQUITTO, else /usr/sbin/mosquitto; `mosquittoBinary()` says
 * null when there is none, and the tests then skip with that reason.
 */

const fs = require('fs');
const os = require('os');
const net = require('net');
const path = require('path');
const { spawn } = require('child_process');
const mqttPacket = require('mqtt-packet');

function mosquittoBinary() {
    const candidate = process.env.OCTOPUS_TEST_MOSQUITTO || '/usr/sbin/mosquitto';
    try {
        fs.accessSync(candidate, fs.constants.X_OK);
        return candidate;
    } catch (e) {
        return null;
    }
}

/** A TCP port nobody listens on, from 56000–56999 (the range this project's tests use). */
async function freePort() {
    for (let attempt = 0; attempt < 50; attempt += 1) {
        const port = 56000 + Math.floor(Math.random() * 1000);
        // eslint-disable-next-line no-await-in-loop
        const free = await new Promise((resolve) => {
            const server = net.createServer();
            server.once('error', () => resolve(false));
            server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
        });
        if (free) return port;
    }
    throw new Error('no free port in 56000-56999');
}

/** Start Mosquitto; resolves to {port, stop(), restart(), log()}. `extra` lines go into its config. */
async function startMosquitto(extra = []) {
    const binary = mosquittoBinary();
    if (!binary) throw new Error('no mosquitto binary');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'octopus-mosquitto-'));
    const port = await freePort();
    const conf = path.join(dir, 'mosquitto.conf');
    const lines = [
        `listener ${port} 127.0.0.1`,
        'allow_anonymous true',
        'persistence false',
        'log_dest stdout',
        'log_type error',
        'log_type warning',
        ...extra,
    ];
    // Started as root, Mosquitto would switch to its own account; stay who we are.
    if (process.getuid && process.getuid() === 0) lines.push('user root');
    fs.writeFileSync(conf, `${lines.join('\n')}\n`);
    let output = '';
    let proc;
    const launch = async () => {
        proc = spawn(binary, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
        proc.stdout.on('data', (d) => { output += d; });
        proc.stderr.on('data', (d) => { output += d; });
        const deadline = Date.now() + 5000;
        for (;;) {
            // eslint-disable-next-line no-await-in-loop
            const up = await new Promise((resolve) => {
                const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
                s.on('error', () => resolve(false));
            });
            if (up) return;
            if (proc.exitCode !== null || Date.now() > deadline) {
                throw new Error(`mosquitto did not start: ${output}`);
            }
            // eslint-disable-next-line no-await-in-loop
            await new Promise((r) => setTimeout(r, 50));
        }
    };
    const kill = () => new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
        return undefined;
    });
    await launch();
    return {
        port,
        log: () => output,
        restart: async () => { await kill(); await launch(); },
        stop: async () => { await kill(); fs.rmSync(dir, { recursive: true, force: true }); },
    };
}

/**
 * A bare MQTT client for tests: `publish` (QoS 0/1, resolves on PUBACK), `subscribe`,
 * received messages in `.messages`. Protocol 4 (3.1.1) unless {protocolVersion: 5}.
 */
async function testClient(port, { clientId = `t-${process.pid}-${Math.random().toString(16).slice(2, 8)}`, protocolVersion = 4 } = {}) {
    const socket = net.connect(port, '127.0.0.1');
    const parser = mqttPacket.parser({ protocolVersion });
    const waiting = new Map();
    const messages = [];
    let nextId = 1;
    socket.on('data', (d) => parser.parse(d));
    socket.on('error', () => {});
    const send = (p) => socket.write(mqttPacket.generate(p, { protocolVersion }));
    const connected = new Promise((resolve, reject) => {
        parser.on('packet', (p) => {
            if (p.cmd === 'connack') {
                if ((p.returnCode || p.reasonCode || 0) !== 0) reject(new Error(`connack ${p.returnCode || p.reasonCode}`));
                else resolve();
            } else if (p.cmd === 'puback' || p.cmd === 'suback') {
                const w = waiting.get(p.messageId);
                waiting.delete(p.messageId);
                if (w) w(p);
            } else if (p.cmd === 'publish') {
                messages.push({ topic: p.topic, payload: p.payload, qos: p.qos });
                if (p.qos === 1) send({ cmd: 'puback', messageId: p.messageId });
            }
        });
    });
    await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
    send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion, clientId, clean: true, keepalive: 60 });
    await connected;
    const request = (packet) => new Promise((resolve) => {
        const messageId = nextId;
        nextId = nextId === 65535 ? 1 : nextId + 1;
        waiting.set(messageId, resolve);
        send({ ...packet, messageId });
    });
    return {
        messages,
        publish(topic, payload, qos = 1) {
            if (qos === 0) {
                send({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 0 });
                return Promise.resolve();
            }
            return request({ cmd: 'publish', topic, payload: Buffer.from(payload), qos });
        },
        subscribe: (topic, qos = 1) => request({ cmd: 'subscribe', subscriptions: [{ topic, qos }] }),
        close() {
            send({ cmd: 'disconnect' });
            socket.end();
        },
    };
}

module.exports = { mosquittoBinary, startMosquitto, testClient, freePort };
