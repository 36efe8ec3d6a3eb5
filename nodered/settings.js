/**
 * Octopus's Node-RED settings: the only settings file, read by
 *
 *     node nodered/node_modules/node-red/red.js --settings nodered/settings.js --userDir var/nodered
 *
 * Values come from the environment (names as in .env.example) only where they must vary
 * between installations; everything else is fixed here, with the reason next to it.
 * Options not listed keep Node-RED's defaults
 * (node_modules/node-red/settings.js documents them all).
 */
'use strict';

const os = require('os');
const path = require('path');
const { storageSeedingCredentials } = require('./lib/storage');

const REPO = path.resolve(__dirname, '..');
const env = process.env;

/** Stop here with a message saying what to set, instead of a half-configured editor. */
function refuseToStart(message) {
    console.error(`[octopus] Node-RED not started: ${message}`);
    process.exit(1);
}

// --- secrets: required, never defaulted ---------------------------------------------------
// Encrypts <userDir>/octopus_cred.json. Without it Node-RED would invent a key and keep it in
// .config.runtime.json next to the file it protects.
const credentialSecret = env.NODERED_CREDENTIAL_SECRET;
if (!credentialSecret) {
    refuseToStart('NODERED_CREDENTIAL_SECRET is not set (any long random string; `./octopus up` generates one in .env).');
}

// The editor's only account; the same account guards the flows' HTTP endpoints.
const adminUser = env.NODERED_ADMIN_USER || 'admin';
const adminPasswordHash = hashAdminPassword();

function hashAdminPassword() {
    if (env.NODERED_ADMIN_PASSWORD_HASH) {
        if (!/^\$2[aby]\$\d{2}\$.{53}$/.test(env.NODERED_ADMIN_PASSWORD_HASH)) {
            refuseToStart('NODERED_ADMIN_PASSWORD_HASH is not a bcrypt hash (node-red admin hash-pw makes one).');
        }
        return env.NODERED_ADMIN_PASSWORD_HASH;
    }
    if (!env.NODERED_ADMIN_PASSWORD) {
        refuseToStart('set NODERED_ADMIN_PASSWORD (or NODERED_ADMIN_PASSWORD_HASH, a bcrypt hash): the editor never runs without a login.');
    }
    // bcryptjs comes with node-red (it checks passwords with it); resolve it from there.
    const bcrypt = require(require.resolve('bcryptjs', {
        paths: [path.dirname(require.resolve('node-red/package.json'))],
    }));
    return bcrypt.hashSync(env.NODERED_ADMIN_PASSWORD, 10);
}

// --- values the flow reads as ${VAR} -----------------------------------------------------
// Node-RED leaves "${VAR}" as literal text when VAR is unset, so the flow's non-secret
// variables get the defaults of .env.example here.
env.MQTT_HOST = env.MQTT_HOST || '127.0.0.1';
env.MQTT_PORT = env.MQTT_PORT || '1883';
// The ingest's MQTT session is persistent (clean start off), so its client id must stay
// the same across restarts, and differ between workers: one per host by default.
env.NODERED_MQTT_CLIENT_ID = env.NODERED_MQTT_CLIENT_ID || `octopus-nodered-${os.hostname()}`;
// The ingest's subscription: `#` for one worker, `$share/octopus-ingest/#` on every worker
// when several share the load (doc/ingest.md: why not shared by default).
env.INGEST_SUBSCRIPTION = env.INGEST_SUBSCRIPTION || '#';
for (const name of ['MQTT_NODERED_USER', 'MQTT_NODERED_PASSWORD']) {
    if (!env[name]) console.warn(`[octopus] ${name} is not set: the broker will refuse Node-RED's connection.`);
}

const flowFile = env.NODERED_FLOWS_FILE || path.join(REPO, 'flows', 'octopus.json');

module.exports = {
    // --- where it listens ---
    uiPort: Number(env.NODERED_PORT || 1880),
    // loopback unless the operator opens it up (OCTOPUS_BIND=0.0.0.0); NODERED_BIND keeps
    // the editor where it is safest when the rest is opened (e.g. 127.0.0.1 behind an SSH tunnel)
    uiHost: env.NODERED_BIND || env.OCTOPUS_BIND || '127.0.0.1',

    // --- the flow ---
    // The platform's flow lives in the repository (flows/octopus.json), so a deploy from the
    // editor is a reviewable diff; tests point NODERED_FLOWS_FILE at a copy.
    flowFile,
    flowFilePretty: true,
    credentialSecret,
    // Node-RED's file storage, plus: write the encrypted credentials file from
    // flows/credentials.template.json (only ${VAR} placeholders) on first start.
    storageModule: storageSeedingCredentials({
        templateFile: path.join(REPO, 'flows', 'credentials.template.json'),
        secret: credentialSecret,
    }),
    // No userDir here: the launcher passes --userDir var/nodered. Our own nodes
    // (node-red-contrib-octopus) are found in nodered/node_modules, the node_modules folder
    // Node-RED itself is installed in, which it always scans.

    // --- who may do what ---
    adminAuth: {
        type: 'credentials',
        users: [{ username: adminUser, password: adminPasswordHash, permissions: '*' }],
    },
    // HTTP endpoints that flows create (http in) are never open either.
    httpNodeAuth: { user: adminUser, pass: adminPasswordHash },

    // --- logs: to the console, the launcher keeps them ---
    logging: {
        console: { level: 'info', metrics: false, audit: false },
    },

    // --- nothing phones home ---
    diagnostics: { enabled: false, ui: false },
    telemetry: { enabled: false, updateNotification: false },

    editorTheme: {
        // The flow file is in the repository's git already; Node-RED's projects would keep
        // a second repository inside the userDir.
        projects: { enabled: false },
        tours: false,
    },
};
