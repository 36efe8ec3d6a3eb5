'use strict';
/**
 * The database side of Modbus polling (postgres/migrations/006): the device list, the key of
 * the one worker's lock (lib/worker-lock.js), and the stats written back — parameters only,
 * one statement each. Plus the diff between the pollers running and the devices wanted.
 * Plain module: no Node-RED.
 */

// pg_try_advisory_lock key: one Node-RED worker polls, the others stand by.
const LOCK_KEY = 7242003;
const DEVICES_SQL = 'SELECT id, site, room, name, host, port, unit_id, profile, poll_interval_ms ' +
    'FROM modbus_devices WHERE enabled ORDER BY id';

// The fields of a row that change what a poller does: any change restarts it.
const DEVICE_FIELDS = ['site', 'room', 'name', 'host', 'port', 'unit_id', 'profile', 'poll_interval_ms'];

// [column, SQL type] of modbus_poll_stats filled from a snapshot, in parameter order ($2…).
const STATS_COLUMNS = [
    ['device_id', 'int'], ['since', 'timestamptz'], ['status', 'text'], ['polls', 'bigint'], ['ok', 'bigint'],
    ['timeouts', 'bigint'], ['exceptions', 'bigint'], ['connection_errors', 'bigint'], ['garbage', 'bigint'],
    ['overflows', 'bigint'], ['consecutive_failures', 'int'], ['last_ok_at', 'timestamptz'],
    ['last_error', 'text'], ['last_error_at', 'timestamptz'], ['late_ms_max', 'int'],
];
const STATS_SQL = (() => {
    const names = STATS_COLUMNS.map(([c]) => c);
    const arrays = STATS_COLUMNS.map(([, t], i) => `$${i + 2}::${t}[]`);
    return `INSERT INTO modbus_poll_stats (${names.join(', ')}, worker, updated_at)
SELECT ${names.map((c) => `u.${c}`).join(', ')}, $1, now()
FROM unnest(${arrays.join(', ')}) AS u(${names.join(', ')})
-- a device deleted since the last refresh is skipped, not a foreign-key error for all
WHERE EXISTS (SELECT 1 FROM modbus_devices d WHERE d.id = u.device_id)
ON CONFLICT (device_id) DO UPDATE SET ${[...names.slice(1), 'worker', 'updated_at'].map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`;
})();

/** What identifies a poller's work: the row's relevant fields and its profile's version. */
function deviceKey(row, profileSignature) {
    return JSON.stringify([...DEVICE_FIELDS.map((f) => row[f]), profileSignature]);
}

/**
 * What to do so that the pollers `running` (Map id → key) match the devices `wanted`
 * (Map id → key): {start: ids, restart: ids, stop: ids}.
 */
function diffDevices(running, wanted) {
    const start = [];
    const restart = [];
    const stop = [];
    for (const [id, key] of wanted) {
        if (!running.has(id)) start.push(id);
        else if (running.get(id) !== key) restart.push(id);
    }
    for (const id of running.keys()) if (!wanted.has(id)) stop.push(id);
    return { start, restart, stop };
}

/** The parameters of STATS_SQL for `worker` and rows ({device_id, ...snapshot}). */
function statsParams(worker, rows) {
    return [worker, ...STATS_COLUMNS.map(([c]) => rows.map((r) => (c === 'late_ms_max' && r[c] !== null ? Math.round(r[c]) : r[c])))];
}

/** Upsert one row per device into modbus_poll_stats with one statement. */
async function writeStats(queryable, worker, rows) {
    if (rows.length) await queryable.query(STATS_SQL, statsParams(worker, rows));
}

/** The enabled devices, as modbus_devices rows. */
async function loadDevices(queryable) {
    return (await queryable.query(DEVICES_SQL)).rows;
}

module.exports = {
    LOCK_KEY, DEVICES_SQL, STATS_SQL, deviceKey, diffDevices, statsParams, writeStats, loadDevices,
};
