'use strict';
/**
 * The ingest's settings: a node property if set, else the environment variable of the same
 * meaning (.env.example), else the default. Each bad value is reported and replaced by the
 * default so that a typo never stops the ingest.
 */

const { DEFAULTS } = require('./ingest-core');

const SETTINGS = [
    // [setting, node property, environment variable, minimum]
    ['batchSize', 'batchSize', 'INGEST_BATCH_SIZE', 1],
    ['lingerMs', 'lingerMs', 'INGEST_LINGER_MS', 0],
    ['maxPayloadBytes', 'maxPayloadBytes', 'INGEST_MAX_PAYLOAD_BYTES', 1],
    ['maxBuffered', 'maxBuffered', null, 1],
];

/** Resolve the settings from node `config` and `env`: {settings, problems}. */
function resolveSettings(config, env) {
    const settings = {};
    const problems = [];
    for (const [key, prop, envName, min] of SETTINGS) {
        const fromNode = config[prop] !== undefined && String(config[prop]).trim() !== '';
        const fromEnv = !fromNode && envName && env[envName] !== undefined && env[envName] !== '';
        const raw = fromNode ? String(config[prop]).trim() : fromEnv ? env[envName].trim() : null;
        if (raw === null) {
            settings[key] = DEFAULTS[key];
            continue;
        }
        const n = Number(raw);
        if (!/^\d+$/.test(raw) || n < min) {
            const source = fromNode ? `property ${prop}` : envName;
            problems.push(`${source}=${JSON.stringify(raw)} is not a whole number ≥ ${min}; using ${DEFAULTS[key]}`);
            settings[key] = DEFAULTS[key];
        } else {
            settings[key] = n;
        }
    }
    return { settings, problems };
}

module.exports = { resolveSettings };
