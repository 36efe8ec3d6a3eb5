'use strict';
/**
 * A node's settings: its property if set, else the environment variable of the same meaning
 * (.env.example), else the fallback. A bad value is reported and replaced
 * by the fallback, so that a typo never stops a node. Plain module: no Node-RED.
 */

/** The value of one setting; a problem, if any, is pushed onto `problems`. */
function wholeNumberSetting(config, env, { prop, envName, min, max = Infinity, fallback }, problems) {
    const fromNode = config[prop] !== undefined && String(config[prop]).trim() !== '';
    const fromEnv = !fromNode && envName && env[envName] !== undefined && env[envName] !== '';
    if (!fromNode && !fromEnv) return fallback;
    const raw = fromNode ? String(config[prop]).trim() : env[envName].trim();
    const n = Number(raw);
    if (/^\d+$/.test(raw) && n >= min && n <= max) return n;
    const source = fromNode ? `property ${prop}` : envName;
    const range = max === Infinity ? `≥ ${min}` : `from ${min} to ${max}`;
    problems.push(`${source}=${JSON.stringify(raw)} is not a whole number ${range}; using ${fallback}`);
    return fallback;
}

/**
 * A node's whole-number settings from a table of [setting, node property, environment
 * variable, default, minimum]: {setting: value}; problems are pushed onto `problems`.
 */
function wholeNumberSettings(table, config, env, problems) {
    const settings = {};
    for (const [key, prop, envName, fallback, min] of table) {
        settings[key] = wholeNumberSetting(config, env, { prop, envName, min, fallback }, problems);
    }
    return settings;
}

/** A text setting: the node property if set, else the environment variable, else the fallback. */
function textSetting(config, env, prop, envName, fallback) {
    return String(config[prop] || '').trim() || String(env[envName] || '').trim() || fallback;
}

module.exports = { wholeNumberSetting, wholeNumberSettings, textSetting };
