'use strict';
/**
 * octopus-db: a config node owning one pg.Pool, connected with settings from the environment
 * (lib/pg-config.js). Other nodes use `getPool()`; the pool is closed when the node closes.
 */

const { Pool } = require('pg');
const { poolConfigFromEnv, describe } = require('./lib/pg-config');

module.exports = function registerOctopusDb(RED) {
    function OctopusDbNode(config) {
        RED.nodes.createNode(this, config);
        const node = this;
        const { config: poolConfig, problems } = poolConfigFromEnv({
            host: config.hostEnv,
            port: config.portEnv,
            database: config.databaseEnv,
            user: config.userEnv,
            password: config.passwordEnv,
        });
        for (const p of problems) node.warn(`PostgreSQL settings: ${p}`);
        node.target = describe(poolConfig);
        node.pool = new Pool(poolConfig);
        // An idle client losing its connection (server restart) emits 'error' on the pool;
        // unhandled, that would take Node-RED down. The next query reconnects.
        node.pool.on('error', (err) => node.warn(`PostgreSQL connection to ${node.target} lost: ${err.message}`));
        node.getPool = () => node.pool;

        // Nodes using the pool hand in a promise of their last writes when they close; Node-RED
        // closes flow nodes before config nodes, so the pool ends only after those writes.
        const lastWrites = new Set();
        node.holdOpenUntil = (promise) => {
            lastWrites.add(promise);
            promise.finally(() => lastWrites.delete(promise)).catch(() => {});
        };

        node.on('close', (done) => {
            Promise.allSettled([...lastWrites])
                .then(() => node.pool.end())
                .catch((err) => node.warn(`closing PostgreSQL pool: ${err.message}`))
                .then(() => done());
        });
    }
    RED.nodes.registerType('octopus-db', OctopusDbNode);
};
