'use strict';
// Profile validation (lib/modbus-profile.js), loading from a directory
// (lib/modbus-profile-store.js) and the node's settings (lib/modbus-settings.js).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { validateProfile, decimalsOf } = require('../nodes/node-red-contrib-octopus/lib/modbus-profile');
const { ProfileStore, DEFAULT_PROFILES_DIR } = require('../nodes/node-red-contrib-octopus/lib/modbus-profile-store');
const { resolveModbusSettings, fleetSettings } = require('../nodes/node-red-contrib-octopus/lib/modbus-settings');
const { consumerSettings } = require('../nodes/node-red-contrib-octopus/lib/broker-config');

/** The errors of a profile with these attributes. */
const errorsOf = (attributes) => validateProfile({ attributes }, 'p.json').errors;

test('modbus profile: the repository\'s osm27 profile is valid, with defaults filled in', async () => {
    const store = new ProfileStore(DEFAULT_PROFILES_DIR);
    const { profile, problem, signature } = await store.get('osm27');
    assert.equal(problem, null);
    assert.match(signature, /^\d+:/);
    assert.equal(profile.attributes.length, 10);
    const va = profile.attributes.find((a) => a.name === 'va');
    assert.deepEqual({ ...va, states: undefined }, {
        name: 'va', register: 'input', address: 3, type: 'uint32', words: 2, wordOrder: 'little', byteOrder: 'big',
        scale: 0.1, offset: 0, decimals: 1, unit: 'V', states: undefined,
    });
    const estado = profile.attributes.find((a) => a.name === 'estado');
    assert.deepEqual([...estado.states], [['0', 'open'], ['1', 'closed'], ['2', 'lockout']]);
});

test('modbus profile: each problem names the file and the attribute', () => {
    assert.deepEqual(errorsOf([{ name: 'a', register: 'holding', address: 0, type: 'int64' }]),
        ['p.json: attribute "a": unknown type "int64": use int16, uint16, int32, uint32, float32']);
    assert.deepEqual(errorsOf([{ name: 'a', register: 'holding', address: 0, type: 'int32' }, { name: 'b', register: 'holding', address: 1, type: 'uint16' }]),
        ['p.json: attributes "a" and "b" overlap at holding register 1']);
    assert.deepEqual(errorsOf([{ name: 'a', register: 'holding', address: 0, type: 'int32' }, { name: 'b', register: 'input', address: 1, type: 'uint16' }]), [],
        'holding and input registers are separate spaces');
    assert.match(errorsOf([{ name: 'a', register: 'input', address: 65535, type: 'uint32' }])[0],
        /^p\.json: attribute "a": "address" must be a whole number from 0 to 65534 \(0-based, and a uint32 takes 2 registers\)/);
    assert.match(errorsOf([{ name: 'a', register: 'input', address: -1, type: 'uint16' }])[0], /"address" must be a whole number from 0 to 65535/);
    assert.match(errorsOf([{ name: 'a', register: 'input', address: 1.5, type: 'uint16' }])[0], /"address"/);
    assert.deepEqual(errorsOf([{ name: 'a', register: 'input', address: 0, type: 'int16', word_order: 'little' }]),
        ['p.json: attribute "a": "word_order" is for 32-bit types']);
    assert.deepEqual(errorsOf([{ name: 'a', register: 'input', address: 0, type: 'int32', word_order: 'middle' }]),
        ['p.json: attribute "a": "word_order" must be "big" or "little"']);
    assert.deepEqual(errorsOf([{ name: 'a', register: 'flags', address: 0, type: 'uint16' }]),
        ['p.json: attribute "a": "register" must be one of holding, input, coil, discrete']);
    assert.deepEqual(errorsOf([{ name: 'a', register: 'input', address: 0, type: 'uint16', adress: 3 }]),
        ['p.json: attribute "a": unknown property "adress"']);
    assert.deepEqual(errorsOf([{ name: 'a', register: 'input', address: 0, type: 'uint16' }, { name: 'a', register: 'input', address: 1, type: 'uint16' }]),
        ['p.json: attribute "a" is defined twice']);
});

test('modbus profile: names, units, scale and states must suit the topic and payload contract', () => {
    assert.match(errorsOf([{ name: 'status', register: 'input', address: 0, type: 'uint16' }])[0], /"name" must be one topic level .* not "status"/);
    assert.match(errorsOf([{ name: 'a/b', register: 'input', address: 0, type: 'uint16' }])[0], /"name" must be one topic level/);
    assert.match(errorsOf([{ register: 'input', address: 0, type: 'uint16' }])[0], /^p\.json: attribute #1: "name"/);
    assert.deepEqual(errorsOf([{ name: 'a', register: 'input', address: 0, type: 'uint16', unit: '' }]),
        ['p.json: attribute "a": "unit" must be a string of 1 to 32 printable characters']);
    assert.deepEqual(errorsOf([{ name: 'a', register: 'input', address: 0, type: 'uint16', scale: 0 }]),
        ['p.json: attribute "a": "scale" must be a non-zero number']);
    assert.deepEqual(errorsOf([{ name: 'a', register: 'coil', address: 0, scale: 2 }]),
        ['p.json: attribute "a": "scale" and "offset" are for numbers, not bits']);
    assert.deepEqual(errorsOf([{ name: 'a', register: 'coil', address: 0, type: 'uint16' }]),
        ['p.json: attribute "a": a coil is one bit: leave "type" out']);
    assert.deepEqual(errorsOf([{ name: 'a', register: 'input', address: 0, type: 'uint16', states: { 0: 'ok', 70000: 'big', 1: '1bad' } }]), [
        'p.json: attribute "a": state "1bad" must start with a letter and hold only letters, digits, space and _.:- (64 at most)',
        'p.json: attribute "a": state key "70000" is not a uint16 value',
    ]);
    assert.deepEqual(errorsOf([{ name: 'a', register: 'input', address: 0, type: 'uint16', states: { 0: 'ok' }, scale: 0.1 }]),
        ['p.json: attribute "a": "states" name raw values: leave out "scale" and "offset"']);
    assert.deepEqual(validateProfile({ attributes: [] }, 'p.json').errors, ['p.json: "attributes" must be a non-empty list']);
    assert.deepEqual(validateProfile([], 'p.json').errors, ['p.json: a profile is a JSON object with "attributes"']);
    assert.equal(decimalsOf(0.001), 3);
    assert.equal(decimalsOf(1.5e-7), 8);
    assert.equal(decimalsOf(20), 0);
});

test('modbus profile store: a missing, broken or fixed file is seen at the next get()', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'octopus-profiles-'));
    try {
        const store = new ProfileStore(dir);
        let got = await store.get('meter');
        assert.equal(got.profile, null);
        assert.match(got.problem, /meter\.json does not exist \(ENOENT\)/);
        const file = path.join(dir, 'meter.json');
        fs.writeFileSync(file, '{"attributes": [');
        got = await store.get('meter');
        assert.match(got.problem, /meter\.json: not readable JSON/);
        const broken = got.signature;
        fs.writeFileSync(file, JSON.stringify({ attributes: [{ name: 'p', register: 'input', address: 0, type: 'uint16', unit: 'W' }] }));
        fs.utimesSync(file, new Date(), new Date(Date.now() + 2000));
        got = await store.get('meter');
        assert.equal(got.problem, null);
        assert.notEqual(got.signature, broken, 'a changed file has a new signature (its devices restart)');
        assert.equal(await store.get('meter'), got, 'an unchanged file is not read again');
        assert.match((await store.get('../etc/passwd')).problem, /is not a file name/);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

test('modbus settings: node property, else environment, else default; the worker named as the ingest names it', () => {
    const { settings, problems } = resolveModbusSettings({}, { NODERED_MQTT_CLIENT_ID: 'nr-1' });
    assert.deepEqual(problems, []);
    assert.deepEqual(settings, {
        refreshS: 2, statsIntervalS: 5, timeoutMs: 1000, backoffMaxS: 10, offlineAfter: 2,
        profilesDir: DEFAULT_PROFILES_DIR, worker: 'nr-1-ingest',
    });
    assert.equal(settings.worker, consumerSettings({ clientid: '' }, { env: { NODERED_MQTT_CLIENT_ID: 'nr-1' } }).settings.clientId);
    assert.ok(fs.existsSync(path.join(DEFAULT_PROFILES_DIR, 'osm27.json')), 'the default is the repository\'s modbus/profiles');
    const env = { MODBUS_TIMEOUT_MS: '250', MODBUS_OFFLINE_AFTER: 'three', MODBUS_PROFILES_DIR: '/etc/octopus/profiles', MODBUS_REFRESH_S: '9' };
    const resolved = resolveModbusSettings({ refreshS: '1', worker: 'w2' }, env);
    assert.equal(resolved.settings.refreshS, 1);
    assert.equal(resolved.settings.timeoutMs, 250);
    assert.equal(resolved.settings.offlineAfter, 2);
    assert.equal(resolved.settings.profilesDir, '/etc/octopus/profiles');
    assert.equal(resolved.settings.worker, 'w2');
    assert.deepEqual(resolved.problems, ['MODBUS_OFFLINE_AFTER="three" is not a whole number ≥ 1; using 2']);
    assert.deepEqual(fleetSettings(resolved.settings),
        { refreshMs: 1000, statsIntervalMs: 5000, timeoutMs: 250, backoffMaxMs: 10000, offlineAfter: 2 });
});
