'use strict';
/**
 * The octopus-alerts node's settings: a node property if set, else the environment variable
 * of the same meaning (.env.example), else the default; a bad value is reported and replaced
 * by the default, so that a typo never stops the alerts. Plain module: no Node-RED.
 */

const { wholeNumberSettings, textSetting } = require('./node-settings');

// [setting, node property, environment variable, default, minimum]
const SETTINGS = [
    ['refreshS', 'refreshS', 'ALERTS_REFRESH_S', 2, 1],
    ['notifyMinIntervalS', 'notifyMinIntervalS', 'ALERT_NOTIFY_MIN_INTERVAL_S', 300, 0],
    ['flapCount', 'flapCount', 'ALERT_FLAP_COUNT', 4, 2],
    ['flapWindowS', 'flapWindowS', 'ALERT_FLAP_WINDOW_S', 600, 1],
    // how long PostgreSQL may not answer before the alert "database unreachable" (lib/alerts-outage.js)
    ['dbDownAfterS', 'dbDownAfterS', 'ALERT_DB_DOWN_AFTER_S', 30, 0],
];
const DEFAULT_EMAIL_FROM = 'octopus@localhost';

/** Settings from node `config`, else `env`, else the default: {settings, problems}. */
function resolveAlertSettings(config, env) {
    const problems = [];
    const settings = wholeNumberSettings(SETTINGS, config, env, problems);
    settings.emailFrom = textSetting(config, env, 'emailFrom', 'ALERT_EMAIL_FROM', DEFAULT_EMAIL_FROM);
    settings.portalUrl = textSetting(config, env, 'portalUrl', 'PORTAL_URL', '');
    if (settings.portalUrl && !/^https?:\/\/[^\s]+$/.test(settings.portalUrl)) {
        problems.push(`PORTAL_URL=${JSON.stringify(settings.portalUrl)} is not an http(s) URL; e-mails go without a link`);
        settings.portalUrl = '';
    }
    return { settings, problems };
}

/** The millisecond form the engine takes (alerts-engine.js), and the database watch (alerts-outage.js). */
function engineSettings(settings) {
    return {
        notifyMinIntervalMs: settings.notifyMinIntervalS * 1000,
        flapCount: settings.flapCount,
        flapWindowMs: settings.flapWindowS * 1000,
        dbDownAfterMs: settings.dbDownAfterS * 1000,
        emailFrom: settings.emailFrom,
        portalUrl: settings.portalUrl,
    };
}

module.exports = { resolveAlertSettings, engineSettings, DEFAULT_EMAIL_FROM };
