'use strict';
// The platform's flow (flows/*.json) is well-formed for Node-RED and holds no secret.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');

const FLOWS_DIR = path.join(__dirname, '..', '..', 'flows');
const FLOW_FILE = path.join(FLOWS_DIR, 'octopus.json');
const TEMPLATE = path.join(FLOWS_DIR, 'credentials.template.json');
// Properties that refer to a config node, and the type they must point to.
const CONFIG_REFS = { broker: 'mqtt-broker', db: 'octopus-db', tls: 'tls-config' };
const SECRET_KEY = /pass(word)?|secret|token|api[-_]?key|credential/i;
const PLACEHOLDER = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;

const flow = JSON.parse(fs.readFileSync(FLOW_FILE, 'utf8'));
const byId = new Map(flow.map((n) => [n.id, n]));

test('every node has a unique id', () => {
    assert.equal(byId.size, flow.length);
    for (const n of flow) assert.ok(typeof n.id === 'string' && n.id.length > 0);
});

test("every node's tab (z) exists", () => {
    for (const n of flow.filter((x) => x.z)) {
        assert.equal(byId.get(n.z)?.type, 'tab', `${n.id}: z=${n.z}`);
    }
});

test('every wire, config reference and group resolves', () => {
    for (const n of flow) {
        for (const [prop, type] of Object.entries(CONFIG_REFS)) {
            if (n.type === 'mqtt-broker' && prop === 'broker') continue; // there it is the host
            // (a string: the e-mail node's `tls` is a yes/no setting, not a tls-config reference)
            if (typeof n[prop] === 'string' && n[prop]) assert.equal(byId.get(n[prop])?.type, type, `${n.id}.${prop}=${n[prop]}`);
        }
        if (n.g) {
            const group = byId.get(n.g);
            assert.equal(group?.type, 'group', `${n.id}.g`);
            assert.equal(group.z, n.z, `${n.id} is on another tab than its group`);
            assert.ok(group.nodes.includes(n.id), `${n.id} not listed in group ${n.g}`);
        }
        if (n.type === 'group') for (const id of n.nodes) assert.equal(byId.get(id)?.g, n.id, `${n.id} lists ${id}`);
        for (const out of n.wires || []) for (const target of out) assert.ok(byId.has(target), `${n.id} wires to ${target}`);
    }
});

test('config node ids are readable and never equal a node type (Node-RED would see a circular reference)', () => {
    const types = new Set(flow.map((n) => n.type));
    for (const n of flow.filter((x) => !x.z && x.type !== 'tab')) {
        assert.match(n.id, /^[a-z][a-z0-9-]+$/, n.id);
        assert.ok(!types.has(n.id), `${n.id} is also a node type`);
    }
});

test('the ingest path: octopus-ingest consumes the broker itself, live and stats out', () => {
    // The stock mqtt in acknowledges on arrival: it may only read the platform's own topics
    // (the alert engine's octopus/live and stats), never device topics, which are the ingest's.
    for (const n of flow.filter((x) => x.type === 'mqtt in')) {
        assert.match(n.topic, /^octopus\//, `${n.id} subscribes to ${n.topic}`);
    }
    const ingests = flow.filter((n) => n.type === 'octopus-ingest');
    assert.equal(ingests.length, 1);
    const ingest = ingests[0];
    assert.equal(ingest.broker, 'octopus-broker');
    // from the environment: '#' for one worker (settings.js), the shared form for several
    assert.equal(ingest.topic, '${INGEST_SUBSCRIPTION}');
    assert.equal(ingest.worker, '', 'the client id derives from NODERED_MQTT_CLIENT_ID, one per worker');
    assert.equal(ingest.receiveMaximum, '', 'INGEST_RECEIVE_MAXIMUM or the default');
    assert.equal(byId.get(ingest.db).type, 'octopus-db');
    const broker = byId.get('octopus-broker');
    assert.equal(broker.protocolVersion, '5');
    assert.equal(broker.clientid, '${NODERED_MQTT_CLIENT_ID}');
    // The broker node only publishes (octopus/live, stats): a clean session, so that a session
    // left by an older flow, whose shared subscriptions would take messages nobody stores,
    // is discarded.
    assert.equal(broker.cleansession, true);
    for (const out of ingest.wires) {
        const mqttOut = byId.get(out[0]);
        assert.equal(mqttOut.type, 'mqtt out');
        assert.equal(mqttOut.broker, 'octopus-broker');
        assert.equal(mqttOut.topic, '', 'topic comes from the message');
        assert.equal(mqttOut.retain, '', 'retain comes from the message');
    }
    assert.ok(flow.some((n) => n.type === 'comment' && n.z === ingest.z && n.g === ingest.g && n.info.length > 200),
        'the tab explains itself');
});

/** Every [path, value] of string leaves under a key that smells of a secret. */
function secretLikeValues(value, where = '') {
    if (value === null || typeof value !== 'object') return [];
    return Object.entries(value).flatMap(([k, v]) => {
        const here = `${where}.${k}`;
        if (typeof v === 'string' && SECRET_KEY.test(k)) return [[here, v]];
        return secretLikeValues(v, here);
    });
}

test('no password, token or secret in clear in any flow JSON or the credentials template', () => {
    const files = fs.readdirSync(FLOWS_DIR).filter((f) => f.endsWith('.json'));
    assert.ok(files.includes('octopus.json') && files.includes('credentials.template.json'));
    for (const f of files) {
        const content = JSON.parse(fs.readFileSync(path.join(FLOWS_DIR, f), 'utf8'));
        for (const [where, v] of secretLikeValues(content)) {
            // an env var *name* (octopus-db's passwordEnv) or a ${VAR} placeholder, nothing else
            assert.ok(PLACEHOLDER.test(v) || /^[A-Z][A-Z0-9_]*$/.test(v) || v === '', `${f}${where} = ${JSON.stringify(v)}`);
        }
        for (const n of Array.isArray(content) ? content : []) {
            assert.equal(n.credentials, undefined, `${f}: ${n.id} carries credentials`);
        }
    }
    const template = JSON.parse(fs.readFileSync(TEMPLATE, 'utf8'));
    for (const [id, creds] of Object.entries(template)) {
        assert.ok(byId.has(id), `template entry ${id} is not a node of the flow`);
        for (const [k, v] of Object.entries(creds)) assert.match(v, PLACEHOLDER, `${id}.${k}`);
    }
});
