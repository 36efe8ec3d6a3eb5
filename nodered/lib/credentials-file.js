'use strict';
/**
 * The flow's credentials file (`<userDir>/<flow name>_cred.json`), written from
 * flows/credentials.template.json when it does not exist yet.
 *
 * The template holds only `${ENV_VAR}` placeholders; Node-RED substitutes them when it
 * creates the nodes, so no secret is ever in the repository, and the file Node-RED keeps is
 * encrypted with NODERED_CREDENTIAL_SECRET exactly as Node-RED itself encrypts it
 * (@node-red/runtime/lib/nodes/credentials.js: aes-256-ctr, key sha256(secret),
 * {"$": iv as hex + ciphertext as base64}).
 */

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const ALGORITHM = 'aes-256-ctr';
const PLACEHOLDER = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;

function keyOf(secret) {
    return crypto.createHash('sha256').update(secret).digest();
}

/** Encrypt a credentials object the way Node-RED does. */
function encryptCredentials(secret, credentials) {
    const iv = crypto.randomBytes(16);
    const cipher = crypto.createCipheriv(ALGORITHM, keyOf(secret), iv);
    const body = cipher.update(JSON.stringify(credentials), 'utf8', 'base64') + cipher.final('base64');
    return { $: iv.toString('hex') + body };
}

/** Decrypt a credentials file's content (the inverse, for tests and troubleshooting). */
function decryptCredentials(secret, encrypted) {
    const iv = Buffer.from(encrypted.$.substring(0, 32), 'hex');
    const decipher = crypto.createDecipheriv(ALGORITHM, keyOf(secret), iv);
    return JSON.parse(decipher.update(encrypted.$.substring(32), 'base64', 'utf8') + decipher.final('utf8'));
}

/** Where Node-RED keeps the credentials of `flowFile` (same rule as its localfilesystem storage). */
function credentialsPath(userDir, flowFile) {
    const ext = path.extname(flowFile);
    return path.join(userDir, `${path.basename(flowFile, ext)}_cred${ext}`);
}

/** Throw unless every credential in the template is a `${VAR}` placeholder. */
function checkTemplate(template, file) {
    for (const [id, creds] of Object.entries(template)) {
        for (const [field, value] of Object.entries(creds || {})) {
            if (typeof value !== 'string' || !PLACEHOLDER.test(value)) {
                throw new Error(`${file}: ${id}.${field} must be a \${ENV_VAR} placeholder, never a value`);
            }
        }
    }
}

/**
 * Write the encrypted credentials file from the template if it does not exist yet, or add
 * to it the template's entries for nodes it has none for (a node a newer flow brought).
 * Returns the path written, or null when nothing was missing: entries already there are
 * never replaced (credentials changed in the editor are kept).
 */
function seedCredentialsFile({ userDir, flowFile, templateFile, secret, pretty = true }) {
    const target = credentialsPath(userDir, flowFile);
    const template = JSON.parse(fs.readFileSync(templateFile, 'utf8'));
    checkTemplate(template, templateFile);
    let current = {};
    if (fs.existsSync(target)) {
        try {
            current = decryptCredentials(secret, JSON.parse(fs.readFileSync(target, 'utf8')));
        } catch (err) {
            return null; // not ours to repair: Node-RED reports a file it cannot decrypt
        }
        if (Object.keys(template).every((id) => id in current)) return null;
    }
    const encrypted = encryptCredentials(secret, { ...template, ...current });
    fs.mkdirSync(userDir, { recursive: true });
    fs.writeFileSync(target, pretty ? JSON.stringify(encrypted, null, 4) : JSON.stringify(encrypted), { mode: 0o600 });
    return target;
}

module.exports = {
    encryptCredentials, decryptCredentials, credentialsPath, checkTemplate, seedCredentialsFile, PLACEHOLDER,
};
