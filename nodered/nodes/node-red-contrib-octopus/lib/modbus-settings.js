'use strict';
/**
 * The octopus-modbus node's settings: a node property if set, else the environment variable
 * of the same meaning (.env.example), else the default; a bad value is reported and replaced
 * by the default, so that a typo never stops the polling. Plain module: no Node-RED.
 */

const { wholeNumberSettings, textSetting } = require('./node-settings');
const { consumerSettings } = require('./broker-config');
const { DEFAULT_PROFILES_DIR } = require('./modbus-profile-store');

// [setting, node property, environment variable, default, minimum]
const SETTINGS = [
    ['refreshS', 'refreshS', 'MODBUS_REFRESH_S', 2, 1],
    ['statsIntervalS', 'statsIntervalS', 'MODBUS_STATS_INTERVAL_S', 5, 1],
    ['timeoutMs', 'timeoutMs', 'MODBUS_TIMEOUT_MS', 1000, 1],
    ['backoffMaxS', 'backoffMaxS', 'MODBUS_BACKOFF_MAX_S', 10, 1],
    ['offlineAfter', 'offlineAfter', 'MODBUS_OFFLINE_AFTER', 2, 1],
];

/** Settings from node `config`, else `env`, else the default: {settings, problems}. */
function resolveModbusSettings(config, env) {
    const problems = [];
    const settings = wholeNumberSettings(SETTINGS, config, env, problems);
    settings.profilesDir = textSetting(config, env, 'profilesDir', 'MODBUS_PROFILES_DIR', DEFAULT_PROFILES_DIR);
    // The ingest's own rule (lib/broker-config.js), so that a worker's stats on
    // octopus/stats/ingest/<worker> and octopus/stats/modbus/<worker> carry one name.
    settings.worker = consumerSettings({}, { clientId: config.worker, env }).settings.clientId;
    return { settings, problems };
}

/** The millisecond form the fleet takes (modbus-fleet.js). */
function fleetSettings(settings) {
    return {
        refreshMs: settings.refreshS * 1000,
        statsIntervalMs: settings.statsIntervalS * 1000,
        timeoutMs: settings.timeoutMs,
        backoffMaxMs: settings.backoffMaxS * 1000,
        offlineAfter: settings.offlineAfter,
    };
}

module.exports = { resolveModbusSettings, fleetSettings };
