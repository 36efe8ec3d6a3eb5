'use strict';
/**
 * The database's periodic upkeep: one call of run_maintenance(raw_days, rollup_days)
 * (postgres/migrations/004) every interval — rollups of finished minutes, partitions made
 * ahead, partitions past retention dropped. Plain module: no Node-RED.
 *
 * Runs never overlap (a slow run delays the next instead of piling up connections), and a
 * failed run (database down) is reported and retried at the next tick: the upkeep catches
 * up by itself, since run_maintenance() works from what is pending, not from the clock.
 */

const { wholeNumberSetting } = require('./whole-number-setting');

const MAINTENANCE_SQL = 'SELECT run_maintenance($1::int, $2::int) AS result';

// [setting, node property, environment variable, default, minimum]
const SETTINGS = [
    ['intervalS', 'intervalS', 'MAINTENANCE_INTERVAL_S', 10, 1],
    ['rawDays', 'rawDays', 'RETENTION_RAW_DAYS', 30, 0],
    ['rollupDays', 'rollupDays', 'RETENTION_ROLLUP_DAYS', 365, 0],
];

/** Settings from node `config`, else `env`, else the default: {settings, problems}. */
function resolveMaintenanceSettings(config, env) {
    const settings = {};
    const problems = [];
    for (const [key, prop, envName, fallback, min] of SETTINGS) {
        settings[key] = wholeNumberSetting(config, env, { prop, envName, min, fallback }, problems);
    }
    return { settings, problems };
}

/**
 * Call `run()` now and then every `intervalMs` after the previous call ended.
 * `onResult(result, ms)` / `onError(err)` hear of each run. Returns {stop(): Promise}, which
 * cancels the next run and resolves once a run in progress has ended.
 */
function schedule(run, intervalMs, { onResult = () => {}, onError = () => {}, timers = { setTimeout, clearTimeout } } = {}) {
    let timer = null;
    let current = null;
    let stopped = false;

    function tick() {
        timer = null;
        const started = Date.now();
        current = Promise.resolve()
            .then(run)
            .then((result) => onResult(result, Date.now() - started), onError)
            .then(() => {
                current = null;
                if (!stopped) timer = timers.setTimeout(tick, intervalMs);
            });
    }

    tick();
    return {
        stop() {
            stopped = true;
            if (timer) timers.clearTimeout(timer);
            return current || Promise.resolve();
        },
    };
}

/** One maintenance run on `queryable` (a pg Pool): resolves to run_maintenance()'s JSON. */
async function runMaintenance(queryable, { rawDays, rollupDays }) {
    const result = await queryable.query(MAINTENANCE_SQL, [rawDays, rollupDays]);
    return result.rows[0].result;
}

/** A one-line account of a run for the node's status, e.g. "12 min rolled up, 1 dropped". */
function describeRun(result) {
    if (!result || result.skipped) return 'another worker is running it';
    const parts = [`${result.refreshed_minutes} min rolled up`];
    if (result.partitions_made) parts.push(`${result.partitions_made} partitions made`);
    const dropped = (result.partitions_dropped || []).length;
    if (dropped) parts.push(`${dropped} expired partitions dropped`);
    if (result.partitions_busy) parts.push('partitions busy (a long query), next time');
    return parts.join(', ');
}

module.exports = { resolveMaintenanceSettings, schedule, runMaintenance, describeRun, MAINTENANCE_SQL };
