/**
 * Node-RED settings for the benchmark's tutorial flow (bench/flows/tutorial.json): Octopus's
 * own nodered/settings.js, plus the `pg` module in the function nodes' global context, which
 * is how a tutorial without a PostgreSQL node gives a function node a database client
 * (node-red-contrib-postgresql is not on the registry here). Used by `./octopus bench` only.
 */
'use strict';

const path = require('path');

const NODERED = path.resolve(__dirname, '..', 'nodered');
const base = require(path.join(NODERED, 'settings.js'));
// The pg that Octopus's Node-RED install has (nodered/package.json pins it).
const pg = require(require.resolve('pg', { paths: [NODERED] }));

module.exports = {
    ...base,
    functionGlobalContext: { ...(base.functionGlobalContext || {}), pg },
};
