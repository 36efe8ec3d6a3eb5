'use strict';
/**
 * PostgreSQL connection settings from the environment. The octopus-db node names the
 * variables (the standard PG* ones by default); it never holds a value, least of all a password.
 */

const DEFAULT_ENV_NAMES = {
    host: 'PGHOST',
    port: 'PGPORT',
    database: 'PGDATABASE',
    user: 'PGUSER',
    password: 'PGPASSWORD',
};
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Build pg.Pool options from `env` using the variable names in `names`.
 * Returns {config, problems}: problems are sentences for a person (bad names, unset
 * variables); a variable that is unset is left out so pg applies its own default.
 */
function poolConfigFromEnv(names = {}, env = process.env) {
    const config = {
        application_name: 'octopus-nodered',
        // fail fast when the server is unreachable; the ingest retries with backoff
        connectionTimeoutMillis: 5000,
        // a stuck statement must not hold the ingest forever
        statement_timeout: 30000,
        query_timeout: 35000,
        idleTimeoutMillis: 30000,
        // ingest writes (INGEST_WRITES_IN_FLIGHT, up to 4), the upkeep, and the lock connections of
        // the Modbus poller and the alert engine, each held for as long as it runs
        max: 8,
    };
    const problems = [];
    for (const [key, fallback] of Object.entries(DEFAULT_ENV_NAMES)) {
        const name = (names[key] || fallback).trim();
        if (!ENV_NAME.test(name)) {
            problems.push(`${key}: "${name.slice(0, 20)}" is not an environment variable name (the node names a variable, it never holds the value)`);
            continue;
        }
        const value = env[name];
        if (value === undefined || value === '') {
            if (key !== 'password') problems.push(`${key}: environment variable ${name} is not set`);
            continue;
        }
        config[key] = key === 'port' ? Number(value) : value;
        if (key === 'port' && !Number.isInteger(config.port)) {
            problems.push(`port: ${name}=${value} is not a port number`);
            delete config.port;
        }
    }
    return { config, problems };
}

/** A description of where a pool connects, safe to log (no password). */
function describe(config) {
    return `${config.user || '(default user)'}@${config.host || '(default host)'}:${config.port || 5432}/${config.database || '(default database)'}`;
}

module.exports = { poolConfigFromEnv, describe, DEFAULT_ENV_NAMES };
