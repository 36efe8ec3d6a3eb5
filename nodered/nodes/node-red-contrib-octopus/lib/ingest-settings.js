'use strict';
/**
 * The ingest's settings: a node property if set, else the environment variable of the same
 * meaning (.env.example), else the default. Each bad value is reported and replaced by the
 * default so that a typo never stops the ingest.
 */

const { DEFAULTS } = require('./ingest-core');
const { MAX_RECEIVE_MAXIMUM } = require('./acking-consumer');
const { wholeNumberSetting } = require('./node-settings');

// The broker may have this many messages unacknowledged with the ingest: enough batches in
// flight that waiting for commits never throttles it (a batch being written, the next ones
// filling), and few enough to bound memory while the database is slow.
const BATCHES_IN_FLIGHT = 20;
const MIN_DEFAULT_RECEIVE_MAXIMUM = 10000;

const SETTINGS = [
    // [setting, node property, environment variable, minimum, maximum]
    ['batchSize', 'batchSize', 'INGEST_BATCH_SIZE', 1, Infinity],
    ['lingerMs', 'lingerMs', 'INGEST_LINGER_MS', 0, Infinity],
    ['liveMs', 'liveMs', 'INGEST_LIVE_MS', 0, Infinity],
    ['maxPayloadBytes', 'maxPayloadBytes', 'INGEST_MAX_PAYLOAD_BYTES', 1, Infinity],
    ['receiveMaximum', 'receiveMaximum', 'INGEST_RECEIVE_MAXIMUM', 1, MAX_RECEIVE_MAXIMUM],
    // batches written at once, each on its own connection of octopus-db's pool (4)
    ['writesInFlight', 'writesInFlight', 'INGEST_WRITES_IN_FLIGHT', 1, 4],
    ['maxBuffered', 'maxBuffered', null, 1, Infinity],
];

/** The receive maximum when none is set: BATCHES_IN_FLIGHT batches, at least 10,000. */
function defaultReceiveMaximum(batchSize) {
    return Math.min(MAX_RECEIVE_MAXIMUM, Math.max(MIN_DEFAULT_RECEIVE_MAXIMUM, batchSize * BATCHES_IN_FLIGHT));
}

/** Resolve the settings from node `config` and `env`: {settings, problems}. */
function resolveSettings(config, env) {
    const settings = {};
    const problems = [];
    const defaults = { ...DEFAULTS };
    for (const [key, prop, envName, min, max] of SETTINGS) {
        if (key === 'receiveMaximum') defaults.receiveMaximum = defaultReceiveMaximum(settings.batchSize);
        settings[key] = wholeNumberSetting(config, env, { prop, envName, min, max, fallback: defaults[key] }, problems);
    }
    // The broker never has more than receiveMaximum messages with us per connection, and
    // after a reconnect those of the previous connection may still be in the buffer: with
    // room for twice that, the buffer can never be full, so nothing is ever dropped.
    const needed = 2 * settings.receiveMaximum;
    if (settings.maxBuffered < needed) {
        problems.push(`the buffer limit (${settings.maxBuffered}) must hold twice the receive maximum ` +
            `(${settings.receiveMaximum}); using ${needed}`);
        settings.maxBuffered = needed;
    }
    return { settings, problems };
}

/**
 * INGEST_LEAVE_GROUP_ON_STOP: true for a worker being retired, so that on stop it leaves the
 * shared subscription (its share then goes to the others) instead of keeping its session.
 */
function leaveGroupOnStop(env) {
    return /^(1|true|yes|on)$/i.test(String(env.INGEST_LEAVE_GROUP_ON_STOP || '').trim());
}

module.exports = { resolveSettings, defaultReceiveMaximum, leaveGroupOnStop };
