'use strict';
// The seeded credentials file must be one Node-RED itself decrypts: checked with Node-RED's
// own credentials module, not with our inverse.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const {
    seedCredentialsFile, decryptCredentials, encryptCredentials, credentialsPath,
} = require('../lib/credentials-file');

const TEMPLATE = path.join(__dirname, '..', '..', 'flows', 'credentials.template.json');

const tempDirs = [];
function tempDir() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'octopus-cred-'));
    tempDirs.push(dir);
    return dir;
}
after(() => tempDirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

async function loadWithNodeRed(secret, fileContent) {
    const credentials = require('@node-red/runtime/lib/nodes/credentials');
    const quiet = () => {};
    credentials.init({
        log: { debug: quiet, warn: quiet, info: quiet, _: (k) => k },
        settings: {
            get: (key) => (key === 'credentialSecret' ? secret : undefined),
            set: async () => {},
        },
    });
    await credentials.load(fileContent);
    return credentials;
}

test('the credentials file goes where Node-RED looks for it', () => {
    assert.equal(credentialsPath('/var/nr', '/repo/flows/octopus.json'), '/var/nr/octopus_cred.json');
});

test('seeded from the template, encrypted, readable by Node-RED with the same secret', async () => {
    const dir = tempDir();
    const written = seedCredentialsFile({ userDir: dir, flowFile: '/x/octopus.json', templateFile: TEMPLATE, secret: 's3cret' });
    assert.equal(written, path.join(dir, 'octopus_cred.json'));
    const content = JSON.parse(fs.readFileSync(written, 'utf8'));
    assert.deepEqual(Object.keys(content), ['$']);
    assert.ok(!fs.readFileSync(written, 'utf8').includes('MQTT_NODERED'), 'encrypted, not clear');
    assert.equal(fs.statSync(written).mode & 0o777, 0o600);

    const nodeRed = await loadWithNodeRed('s3cret', content);
    assert.deepEqual(nodeRed.get('octopus-broker'), { user: '${MQTT_NODERED_USER}', password: '${MQTT_NODERED_PASSWORD}' });
    assert.deepEqual(decryptCredentials('s3cret', content), JSON.parse(fs.readFileSync(TEMPLATE, 'utf8')));
    await assert.rejects(loadWithNodeRed('wrong', content), /Failed to decrypt credentials/);
});

test('a credentials file this secret cannot decrypt is left alone for Node-RED to report', () => {
    const dir = tempDir();
    const file = path.join(dir, 'octopus_cred.json');
    fs.writeFileSync(file, '{"$":"kept"}');
    assert.equal(seedCredentialsFile({ userDir: dir, flowFile: 'octopus.json', templateFile: TEMPLATE, secret: 'k' }), null);
    assert.equal(fs.readFileSync(file, 'utf8'), '{"$":"kept"}');
});

test('entries for nodes a newer flow brought are added; existing ones are kept', () => {
    const dir = tempDir();
    const template = path.join(dir, 'template.json');
    fs.writeFileSync(template, JSON.stringify({ broker: { user: '${U}', password: '${P}' } }));
    seedCredentialsFile({ userDir: dir, flowFile: 'f.json', templateFile: template, secret: 'k' });
    const file = path.join(dir, 'f_cred.json');
    // changed in the editor since: kept
    fs.writeFileSync(file, JSON.stringify(encryptCredentials('k', { broker: { user: 'edited', password: 'x' } })));
    fs.writeFileSync(template, JSON.stringify({ broker: { user: '${U}', password: '${P}' }, mail: { userid: '${M}' } }));
    assert.equal(seedCredentialsFile({ userDir: dir, flowFile: 'f.json', templateFile: template, secret: 'k' }), file);
    assert.deepEqual(decryptCredentials('k', JSON.parse(fs.readFileSync(file, 'utf8'))),
        { broker: { user: 'edited', password: 'x' }, mail: { userid: '${M}' } });
    assert.equal(seedCredentialsFile({ userDir: dir, flowFile: 'f.json', templateFile: template, secret: 'k' }), null);
});

test('a template holding a value instead of a ${VAR} placeholder is refused', () => {
    const dir = tempDir();
    const template = path.join(dir, 'template.json');
    fs.writeFileSync(template, JSON.stringify({ b: { user: '${U}', password: 'hunter2' } }));
    assert.throws(
        () => seedCredentialsFile({ userDir: dir, flowFile: 'f.json', templateFile: template, secret: 'k' }),
        /b\.password must be a \$\{ENV_VAR\} placeholder/,
    );
    assert.ok(!fs.existsSync(path.join(dir, 'f_cred.json')));
});
