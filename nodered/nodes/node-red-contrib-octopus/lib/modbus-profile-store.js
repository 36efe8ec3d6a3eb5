'use strict';
/**
 * Profiles read from a directory (MODBUS_PROFILES_DIR), one `<profile>.json` per model. A
 * file is read again when its size or modification time changes, so that an edited profile
 * takes effect at the next device-list refresh without a redeploy. Plain module: no Node-RED.
 */

const fs = require('fs');
const path = require('path');
const { validateProfile } = require('./modbus-profile');

// The repository's modbus/profiles (the Docker image copies modbus/ to the same place
// relative to this package); MODBUS_PROFILES_DIR overrides it.
const DEFAULT_PROFILES_DIR = path.resolve(__dirname, '../../../../modbus/profiles');
// modbus_devices.profile's CHECK: also keeps a name from leaving the directory.
const PROFILE_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

class ProfileStore {
    /** @param {string} dir  the directory holding `<profile>.json` files */
    constructor(dir) {
        this.dir = dir;
        this.cache = new Map(); // name → {signature, profile, problem}
    }

    /**
     * The profile called `name`: {signature, profile, problem}. `profile` is null when the
     * file is missing or invalid, and `problem` says why. `signature` changes whenever the
     * file does (devices using it are restarted then).
     */
    async get(name) {
        if (!PROFILE_NAME.test(String(name))) {
            return { signature: 'bad-name', profile: null, problem: `profile name ${JSON.stringify(name)} is not a file name` };
        }
        const file = path.join(this.dir, `${name}.json`);
        let stat;
        try {
            stat = await fs.promises.stat(file);
        } catch (e) {
            this.cache.delete(name);
            return { signature: 'missing', profile: null, problem: `profile ${file} does not exist (${e.code || e.message})` };
        }
        const signature = `${stat.size}:${stat.mtimeMs}`;
        const cached = this.cache.get(name);
        if (cached && cached.signature === signature) return cached;
        const entry = { signature, ...(await readProfile(file)) };
        this.cache.set(name, entry);
        return entry;
    }
}

/** Read and validate one profile file: {profile, problem} (one of them null). */
async function readProfile(file) {
    let json;
    try {
        json = JSON.parse(await fs.promises.readFile(file, 'utf8'));
    } catch (e) {
        return { profile: null, problem: `${file}: not readable JSON (${e.message})` };
    }
    const { profile, errors } = validateProfile(json, file);
    return { profile, problem: errors.length ? errors.join('; ') : null };
}

module.exports = { ProfileStore, readProfile, DEFAULT_PROFILES_DIR };
