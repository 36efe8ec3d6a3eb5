'use strict';
// A schema of the test's own in the real PostgreSQL named by OCTOPUS_TEST_PG, with every
// migration of postgres/migrations applied in order; dropped by dropSchema().
const fs = require('fs');
const path = require('path');
const { Client } = require('pg');

const MIGRATIONS = path.join(__dirname, '..', '..', '..', 'postgres', 'migrations');

/** Connect, create `<prefix>_<pid>_<time>`, make it the search path, apply the migrations. */
async function migratedSchema(url, prefix) {
    const schema = `${prefix}_${process.pid}_${Date.now()}`;
    const client = new Client({ connectionString: url });
    await client.connect();
    await client.query(`CREATE SCHEMA ${schema}`);
    await client.query(`SET search_path TO ${schema}`);
    for (const f of fs.readdirSync(MIGRATIONS).filter((n) => n.endsWith('.sql')).sort()) {
        // eslint-disable-next-line no-await-in-loop
        await client.query(fs.readFileSync(path.join(MIGRATIONS, f), 'utf8'));
    }
    return { client, schema };
}

/** Drop the schema and close the connection. */
async function dropSchema({ client, schema }) {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
}

module.exports = { migratedSchema, dropSchema };
