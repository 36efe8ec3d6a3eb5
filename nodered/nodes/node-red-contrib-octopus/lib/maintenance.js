'use strict';
/**
 * The database's periodic upkeep: one call of run_maintenance(raw_days, rollup_days,
 * reject_days) (postgres/migrations/004, 013) every interval — rollups of finished minutes,
 * partitions made ahead, partitions and rejects past retention dropped. Plain module: no
 * Node-RED.
 *
 * Runs never overlap (lib/schedule.js: a slow run delays the next instead of piling up
 * connections), and a failed run (database down) is reported and retried at the next tick:
 * the upkeep catches up by itself, since run_maintenance() works from what is pending, not
 * from the clock.
 */

const { wholeNumberSettings } = require('./node-settings');

const MAINTENANCE_SQL = 'SELECT run_maintenance($1::int, $2::int, $3::int) AS result';

// [setting, node property, environment variable, default, minimum]
const SETTINGS = [
    ['intervalS', 'intervalS', 'MAINTENANCE_INTERVAL_S', 10, 1],
    ['rawDays', 'rawDays', 'RETENTION_RAW_DAYS', 30, 0],
    ['rollupDays', 'rollupDays', 'RETENTION_ROLLUP_DAYS', 365, 0],
    ['rejectDays', 'rejectDays', 'RETENTION_REJECTS_DAYS', 30, 0],
];

/** Settings from node `config`, else `env`, else the default: {settings, problems}. */
function resolveMaintenanceSettings(config, env) {
    const problems = [];
    return { settings: wholeNumberSettings(SETTINGS, config, env, problems), problems };
}

/** One maintenance run on `queryable` (a pg Pool): resolves to run_maintenance()'s JSON. */
async function runMaintenance(queryable, { rawDays, rollupDays, rejectDays }) {
    const result = await queryable.query(MAINTENANCE_SQL, [rawDays, rollupDays, rejectDays]);
    return result.rows[0].result;
}

/** A one-line account of a run for the node's status, e.g. "12 min rolled up, 1 dropped". */
function describeRun(result) {
    if (!result || result.skipped) return 'another worker is running it';
    const parts = [`${result.refreshed_minutes} min rolled up`];
    if (result.partitions_made) parts.push(`${result.partitions_made} partitions made`);
    const dropped = (result.partitions_dropped || []).length;
    if (dropped) parts.push(`${dropped} expired partitions dropped`);
    if (result.rejects_deleted) parts.push(`${result.rejects_deleted} expired rejects deleted`);
    if (result.partitions_busy) parts.push('partitions busy (a long query), next time');
    return parts.join(', ');
}

module.exports = { resolveMaintenanceSettings, runMaintenance, describeRun, MAINTENANCE_SQL };
