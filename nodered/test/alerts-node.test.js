'use strict';
// The octopus-alerts node in a real Node-RED runtime (node-red-node-test-helper): without a
// database, with an unreachable one, and (OCTOPUS_TEST_PG set, see store.test.js) raising
// an alert from an octopus/live message, then closing and giving its lock back. And the
// notification messages handed to the stock nodes they are made for: node-red-node-email's
// `e-mail` (to an SMTP server started here) and Node-RED's `http request` (to an HTTP
// server started here).
const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const http = require('http');
const net = require('net');
const path = require('path');
const helper = require('node-red-node-test-helper');
const octopusDb = require('../nodes/node-red-contrib-octopus/octopus-db');
const octopusAlerts = require('../nodes/node-red-contrib-octopus/octopus-alerts');
const emailNode = require('node-red-node-email/61-email.js');
const httpRequestNode = require('@node-red/nodes/core/network/21-httprequest.js');
const { notificationMessage } = require('../nodes/node-red-contrib-octopus/lib/alerts-messages');
const { migratedSchema, dropSchema } = require('./helpers/database');
const { CLOSED_BY_ITSELF_MS } = require('./helpers/node-close');

// node-red-node-email bundles its own dependencies: an SMTP server and a parser to receive with
const emailDir = path.dirname(require.resolve('node-red-node-email/package.json'));
const { SMTPServer } = require(require.resolve('smtp-server', { paths: [emailDir] }));
const { simpleParser } = require(require.resolve('mailparser', { paths: [emailDir] }));

helper.init(require.resolve('node-red'));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(check, ms, what) {
    const end = Date.now() + ms;
    while (!check()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await sleep(10); // eslint-disable-line no-await-in-loop
    }
}
function freePort() {
    return new Promise((resolve) => {
        const s = net.createServer().listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}
const load = (nodes, flow) => new Promise((resolve) => { helper.load(nodes, flow, resolve); });
const statuses = (id) => helper.getNode(id).status.getCalls().filter((c) => c.thisValue.id === id).map((c) => c.args[0]);
const lastStatus = (id) => statuses(id).slice(-1)[0] || {};

const DB_NODE = {
    id: 'db', type: 'octopus-db', hostEnv: 'ALERTS_TEST_PGHOST', portEnv: 'ALERTS_TEST_PGPORT',
    databaseEnv: 'ALERTS_TEST_PGDATABASE', userEnv: 'ALERTS_TEST_PGUSER', passwordEnv: 'ALERTS_TEST_PGPASSWORD',
};
const flow = (extra = {}) => [
    { id: 'tab', type: 'tab', label: 'test' },
    DB_NODE,
    { id: 'alerts', type: 'octopus-alerts', z: 'tab', db: 'db', refreshS: '1', wires: [['mqtt'], ['email'], ['webhook']], ...extra },
    { id: 'mqtt', type: 'helper', z: 'tab' },
    { id: 'email', type: 'helper', z: 'tab' },
    { id: 'webhook', type: 'helper', z: 'tab' },
];

const ALERT_ROW = {
    id: '42', rule_id: 3, rule_name: 'hot', site: 'oficina', room: 'servidores', device: 'servidor1', attribute: 'temperatura',
    severity: 'critical', message: 'too hot: 31.5°C', raised_at: new Date('2026-11-22T12:00:00Z'), raised_value: '31.5',
    acked_at: null, acked_by: null, cleared_at: null, cleared_value: null, flapping: false,
};

describe('octopus-alerts in Node-RED', () => {
    before(() => new Promise((resolve) => helper.startServer(resolve)));
    after(() => new Promise((resolve) => helper.stopServer(resolve)));
    afterEach(() => helper.unload());

    it('without a database: a red status and an error, no crash', async () => {
        await load([octopusDb, octopusAlerts], flow({ db: '' }));
        assert.deepEqual(lastStatus('alerts'), { fill: 'red', shape: 'dot', text: 'no database configured' });
        const errors = helper.log().args.filter((a) => a[0].type === 'octopus-alerts' && a[0].level === helper.log().ERROR);
        assert.match(errors[0][0].msg, /needs an octopus-db config node/);
        helper.getNode('alerts').receive({ topic: 'octopus/live', payload: { readings: [], statuses: [] } }); // no crash
    });

    it('with the database unreachable: says so, drops its input, closes at once', async () => {
        Object.assign(process.env, { ALERTS_TEST_PGHOST: '127.0.0.1', ALERTS_TEST_PGPORT: String(await freePort()), ALERTS_TEST_PGUSER: 'nobody' });
        await load([octopusDb, octopusAlerts], flow());
        await until(() => lastStatus('alerts').text === 'database unreachable', 3000, 'the status');
        assert.deepEqual(lastStatus('alerts'), { fill: 'red', shape: 'ring', text: 'database unreachable' });
        const warnings = helper.log().args.filter((a) => a[0].type === 'octopus-alerts' && a[0].level === helper.log().WARN);
        assert.match(warnings[0][0].msg, /cannot reach nobody@127\.0\.0\.1:\d+\/.*ECONNREFUSED.*retrying every 1 s/);
        helper.getNode('alerts').receive({ topic: 'octopus/live', payload: 'garbage' });
        const t0 = Date.now();
        await helper.unload();
        assert.ok(Date.now() - t0 < CLOSED_BY_ITSELF_MS, `closed in ${Date.now() - t0} ms`);
    });

    it('with the database unreachable past ALERT_DB_DOWN_AFTER_S: raises "database unreachable" without it', async () => {
        Object.assign(process.env, { ALERTS_TEST_PGHOST: '127.0.0.1', ALERTS_TEST_PGPORT: String(await freePort()), ALERTS_TEST_PGUSER: 'nobody' });
        await load([octopusDb, octopusAlerts], flow({ dbDownAfterS: '0' }));
        const states = [];
        helper.getNode('mqtt').on('input', (msg) => states.push(msg));
        await until(() => lastStatus('alerts').text === 'database unreachable: alert raised', 3000, 'the status');
        assert.deepEqual(lastStatus('alerts'), { fill: 'red', shape: 'dot', text: 'database unreachable: alert raised' });
        const warnings = helper.log().args.filter((a) => a[0].type === 'octopus-alerts' && a[0].level === helper.log().WARN);
        assert.ok(warnings.some((w) => /raised the alert "database unreachable" without the database .*ECONNREFUSED.*0 channels notified/.test(w[0].msg)));
        await until(() => states.length === 1, 1000, 'the state');
        assert.equal(states[0].topic, 'octopus/alerts/platform/octopus/platform/database/reachable');
        assert.equal(JSON.parse(states[0].payload).state, 'active');
    });

    it('its e-mail message, sent by the stock e-mail node (To left empty), arrives as plain text', async () => {
        const received = [];
        const smtp = new SMTPServer({
            authOptional: true, disabledCommands: ['STARTTLS', 'AUTH'], logger: false,
            onData(stream, session, callback) {
                simpleParser(stream).then((mail) => {
                    received.push({ mail, envelope: session.envelope });
                    callback();
                }, callback);
            },
        });
        const port = await freePort();
        await new Promise((resolve) => smtp.listen(port, '127.0.0.1', resolve));
        try {
            await load([emailNode], [
                { id: 'tab', type: 'tab', label: 'test' },
                // the stock node's "To" field is its `name` property: empty, so that msg.to is used
                { id: 'mail', type: 'e-mail', z: 'tab', server: '127.0.0.1', port: String(port), authtype: 'NONE', secure: false, tls: false, name: '', dname: 'alerts' },
            ]);
            const channel = { id: 1, name: 'ops', kind: 'email', target: 'ops@example.com, boss@example.com', severities: ['critical'] };
            const { output, msg } = notificationMessage(channel, { ...ALERT_ROW, message: 'too hot: <b>31.5</b>°C' }, 'raised',
                { emailFrom: 'octopus@plant.example', portalUrl: 'https://octopus.example.com' });
            assert.equal(output, 1);
            helper.getNode('mail').receive(msg);
            await until(() => received.length === 1, 5000, 'the e-mail');
            const [{ mail, envelope }] = received;
            assert.deepEqual(envelope.rcptTo.map((r) => r.address), ['ops@example.com', 'boss@example.com'], 'msg.to: the channel\'s addresses');
            assert.equal(envelope.mailFrom.address, 'octopus@plant.example', 'msg.from');
            assert.equal(mail.subject, '[Octopus critical] too hot: <b>31.5</b>°C', 'msg.topic is the subject');
            assert.equal(mail.html, false, 'plain text only: the node sends a body that looks like HTML as HTML');
            assert.match(mail.text, /^too hot: < b>31\.5<\/b>°C\n\nAlert: {6}raised \(critical\)\n/);
            assert.match(mail.text, /https:\/\/octopus\.example\.com\/alerts\/42/);
        } finally {
            await new Promise((resolve) => smtp.close(resolve));
        }
    });

    it('its webhook message, sent by a stock http request node (method set by msg.method), arrives as JSON', async () => {
        const requests = [];
        const server = http.createServer((req, res) => {
            let body = '';
            req.on('data', (c) => { body += c; });
            req.on('end', () => {
                requests.push({ method: req.method, url: req.url, type: req.headers['content-type'], body });
                res.end('ok');
            });
        });
        const port = await freePort();
        await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
        try {
            await load([httpRequestNode], [
                { id: 'tab', type: 'tab', label: 'test' },
                { id: 'hook', type: 'http request', z: 'tab', method: 'use', ret: 'txt', url: '', wires: [['done']] },
                { id: 'done', type: 'helper', z: 'tab' },
            ]);
            const channel = { id: 2, name: 'pager', kind: 'webhook', target: `http://127.0.0.1:${port}/hook?token=x`, severities: ['critical'] };
            const { output, msg } = notificationMessage(channel, ALERT_ROW, 'cleared', { emailFrom: 'x', portalUrl: '' });
            assert.equal(output, 2);
            const answered = new Promise((resolve) => helper.getNode('done').on('input', resolve));
            helper.getNode('hook').receive(msg);
            const answer = await answered;
            assert.equal(answer.statusCode, 200);
            assert.deepEqual(requests.map(({ method, url, type }) => ({ method, url, type })),
                [{ method: 'POST', url: '/hook?token=x', type: 'application/json' }]);
            const body = JSON.parse(requests[0].body);
            assert.equal(body.event, 'cleared');
            assert.equal(body.id, 42);
        } finally {
            await new Promise((resolve) => server.close(resolve));
        }
    });

    const PG_URL = process.env.OCTOPUS_TEST_PG;
    it('raises an alert from octopus/live, then closes and gives its lock back', {
        skip: PG_URL ? false : 'OCTOPUS_TEST_PG is not set (a libpq URL of a running PostgreSQL): not tested against a real database',
    }, async () => {
        const db = await migratedSchema(PG_URL, 'octopus_alerts_node');
        try {
            const u = new URL(PG_URL);
            Object.assign(process.env, {
                ALERTS_TEST_PGHOST: u.hostname, ALERTS_TEST_PGPORT: u.port || '5432', ALERTS_TEST_PGDATABASE: u.pathname.slice(1),
                ALERTS_TEST_PGUSER: decodeURIComponent(u.username), ALERTS_TEST_PGPASSWORD: decodeURIComponent(u.password),
                PGOPTIONS: `-c search_path=${db.schema}`,
            });
            const { rows: [rule] } = await db.client.query(`INSERT INTO alert_rules (name, kind, devices, attribute, condition, high, severity)
                VALUES ('hot', 'threshold', 'oficina/#', 'temperatura', 'above', 30, 'critical') RETURNING id`);
            await db.client.query(`INSERT INTO notification_channels (name, kind, target, severities) VALUES
                ('ops', 'email', 'ops@example.com', '{critical}'), ('pager', 'webhook', 'https://hooks.example.com/x', '{critical}'),
                ('bus', 'mqtt', 'plant/alerts', '{info}')`);
            await load([octopusDb, octopusAlerts], flow());
            const out = { mqtt: [], email: [], webhook: [] };
            for (const id of Object.keys(out)) helper.getNode(id).on('input', (msg) => out[id].push(msg));
            await until(() => lastStatus('alerts').text === '1 rule, 0 active alerts', 3000, 'the status');
            const live = {
                readings: [{ site: 'oficina', room: 'servidores', device: 'servidor1', attribute: 'temperatura', ts: new Date().toISOString(), value: 31.5, unit: '°C' }],
                statuses: [],
                rejects: 0,
            };
            helper.getNode('alerts').receive({ topic: 'octopus/live', payload: JSON.stringify(live) }); // as a string
            await until(() => out.webhook.length === 1, 3000, 'the notifications');
            assert.equal(out.mqtt.length, 1, 'the state only: the mqtt channel takes info, not critical');
            assert.equal(out.mqtt[0].topic, `octopus/alerts/${rule.id}/oficina/servidores/servidor1/temperatura`);
            assert.equal(JSON.parse(out.mqtt[0].payload).state, 'active');
            assert.equal(out.email[0].to, 'ops@example.com');
            assert.equal(out.webhook[0].url, 'https://hooks.example.com/x');
            await until(() => lastStatus('alerts').text === '1 rule, 1 active alert', 2000, 'the status');
            assert.equal(lastStatus('alerts').fill, 'yellow');
            live.readings[0].value = 20;
            helper.getNode('alerts').receive({ topic: 'octopus/live', payload: live }); // parsed already
            await until(() => out.mqtt.length === 2, 3000, 'the clear');
            assert.equal(JSON.parse(out.mqtt[1].payload).state, 'cleared');
            const t0 = Date.now();
            await helper.unload();
            assert.ok(Date.now() - t0 < CLOSED_BY_ITSELF_MS, `closed in ${Date.now() - t0} ms`);
            const locks = await db.client.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 7242004");
            assert.equal(locks.rows[0].n, 0, 'the alerts lock is released');
        } finally {
            delete process.env.PGOPTIONS;
            await dropSchema(db);
        }
    });
});
