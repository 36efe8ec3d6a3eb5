'use strict';
// Settings of our nodes (environment → values) and of Node-RED itself (settings.js).
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { spawnSync } = require('child_process');
const { resolveSettings } = require('../nodes/node-red-contrib-octopus/lib/ingest-settings');
const { poolConfigFromEnv, describe } = require('../nodes/node-red-contrib-octopus/lib/pg-config');

test('ingest settings: node property, else environment, else default', () => {
    const env = { INGEST_BATCH_SIZE: '200', INGEST_LINGER_MS: '0' };
    const { settings, problems } = resolveSettings({ batchSize: '', lingerMs: '', maxPayloadBytes: '1000' }, env);
    assert.deepEqual(settings, { batchSize: 200, lingerMs: 0, liveMs: 15, maxPayloadBytes: 1000, receiveMaximum: 10000, writesInFlight: 2, maxBuffered: 100000 });
    assert.deepEqual(problems, []);
    assert.equal(resolveSettings({ batchSize: '7' }, env).settings.batchSize, 7);
    assert.equal(resolveSettings({}, {}).settings.batchSize, 2000);
});

test('ingest settings: a bad value is reported and replaced by the default', () => {
    const { settings, problems } = resolveSettings({}, { INGEST_BATCH_SIZE: 'lots', INGEST_LINGER_MS: '-5' });
    assert.equal(settings.batchSize, 2000);
    assert.equal(settings.lingerMs, 50);
    assert.deepEqual(problems, [
        'INGEST_BATCH_SIZE="lots" is not a whole number ≥ 1; using 2000',
        'INGEST_LINGER_MS="-5" is not a whole number ≥ 0; using 50',
    ]);
    assert.match(resolveSettings({ batchSize: '0' }, {}).problems[0], /^property batchSize="0"/);
});

test('ingest settings: the receive maximum follows the batch size, and the buffer holds twice it', () => {
    assert.equal(resolveSettings({}, { INGEST_BATCH_SIZE: '2000' }).settings.receiveMaximum, 40000);
    assert.equal(resolveSettings({}, { INGEST_BATCH_SIZE: '5000' }).settings.receiveMaximum, 65535, 'MQTT caps it');
    assert.equal(resolveSettings({}, { INGEST_RECEIVE_MAXIMUM: '300' }).settings.receiveMaximum, 300);
    const tooBig = resolveSettings({}, { INGEST_RECEIVE_MAXIMUM: '70000' });
    assert.equal(tooBig.settings.receiveMaximum, 40000);
    assert.deepEqual(tooBig.problems, ['INGEST_RECEIVE_MAXIMUM="70000" is not a whole number from 1 to 65535; using 40000']);
    // the ingest's own drop-when-full path must stay unreachable
    const small = resolveSettings({ maxBuffered: '1000' }, { INGEST_RECEIVE_MAXIMUM: '60000' });
    assert.equal(small.settings.maxBuffered, 120000);
    assert.match(small.problems[0], /must hold twice the receive maximum/);
});

test('database settings come from the standard PG* variables by default', () => {
    const env = { PGHOST: 'db', PGPORT: '5433', PGDATABASE: 'octopus', PGUSER: 'octopus', PGPASSWORD: 'pw' };
    const { config, problems } = poolConfigFromEnv({}, env);
    assert.deepEqual(problems, []);
    assert.equal(config.host, 'db');
    assert.equal(config.port, 5433);
    assert.equal(config.password, 'pw');
    assert.equal(describe(config), 'octopus@db:5433/octopus');
});

test('database settings: other variable names; a value in place of a name is refused', () => {
    const env = { MY_HOST: 'h', MY_PASS: 'secret' };
    const { config, problems } = poolConfigFromEnv({ host: 'MY_HOST', password: 'MY_PASS', user: 'hunter2!' }, env);
    assert.equal(config.host, 'h');
    assert.equal(config.password, 'secret');
    assert.equal(config.user, undefined);
    assert.ok(problems.some((p) => /user: "hunter2!" is not an environment variable name/.test(p)));
    assert.ok(problems.some((p) => p === 'database: environment variable PGDATABASE is not set'));
    assert.ok(!problems.some((p) => /password/.test(p)), 'an unset password is fine (trust, .pgpass)');
});

const SETTINGS = path.join(__dirname, '..', 'settings.js');
function loadSettings(env) {
    const script = `const s = require(${JSON.stringify(SETTINGS)}); console.log(JSON.stringify({
        uiPort: s.uiPort, uiHost: s.uiHost, flowFile: s.flowFile, pretty: s.flowFilePretty,
        user: s.adminAuth.users[0].username, hash: s.adminAuth.users[0].password,
        nodeUser: s.httpNodeAuth.user, nodePass: s.httpNodeAuth.pass, projects: s.editorTheme.projects.enabled,
        clientId: process.env.NODERED_MQTT_CLIENT_ID, storage: typeof s.storageModule.init }))`;
    const r = spawnSync(process.execPath, ['-e', script], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
    return { status: r.status, stderr: r.stderr, settings: r.status === 0 ? JSON.parse(r.stdout) : null };
}

test('settings.js refuses to start without a credential secret or an admin password', () => {
    let r = loadSettings({ NODERED_ADMIN_PASSWORD: 'pw' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /NODERED_CREDENTIAL_SECRET is not set/);
    r = loadSettings({ NODERED_CREDENTIAL_SECRET: 'k' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /set NODERED_ADMIN_PASSWORD/);
    r = loadSettings({ NODERED_CREDENTIAL_SECRET: 'k', NODERED_ADMIN_PASSWORD_HASH: 'plain' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /not a bcrypt hash/);
});

test('settings.js: environment, defaults, one bcrypt-hashed account for editor and HTTP nodes', () => {
    const bcrypt = require('bcryptjs');
    const r = loadSettings({ NODERED_CREDENTIAL_SECRET: 'k', NODERED_ADMIN_PASSWORD: 'pw', NODERED_PORT: '56999', NODERED_ADMIN_USER: 'boss' });
    assert.equal(r.status, 0, r.stderr);
    const s = r.settings;
    assert.equal(s.uiPort, 56999);
    assert.equal(s.uiHost, '127.0.0.1');
    assert.equal(s.flowFile, path.resolve(__dirname, '..', '..', 'flows', 'octopus.json'));
    assert.equal(s.pretty, true);
    assert.equal(s.user, 'boss');
    assert.ok(bcrypt.compareSync('pw', s.hash));
    assert.equal(s.nodeUser, 'boss');
    assert.equal(s.nodePass, s.hash);
    assert.equal(s.projects, false);
    assert.match(s.clientId, /^octopus-nodered-/);
    assert.equal(s.storage, 'function');
    const hash = bcrypt.hashSync('other', 4);
    const h = loadSettings({ NODERED_CREDENTIAL_SECRET: 'k', NODERED_ADMIN_PASSWORD_HASH: hash, NODERED_FLOWS_FILE: '/tmp/x.json' });
    assert.equal(h.settings.hash, hash);
    assert.equal(h.settings.flowFile, '/tmp/x.json');
});

test('settings.js: the editor listens on NODERED_BIND, else OCTOPUS_BIND', () => {
    const base = { NODERED_CREDENTIAL_SECRET: 'k', NODERED_ADMIN_PASSWORD: 'pw' };
    assert.equal(loadSettings({ ...base, OCTOPUS_BIND: '0.0.0.0' }).settings.uiHost, '0.0.0.0');
    const kept = loadSettings({ ...base, OCTOPUS_BIND: '0.0.0.0', NODERED_BIND: '127.0.0.1' });
    assert.equal(kept.settings.uiHost, '127.0.0.1');
});
