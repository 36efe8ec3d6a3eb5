-- 010: least privilege in the database (doc/security.md, "Database roles").
--
-- Until now every component connected as the owner (PGUSER), who owns every object and runs
-- these migrations. From here on:
-- * the owner stays the portal's role (it reads and writes every table, and migrates);
-- * octopus_flows: what Node-RED's nodes run (node-red-contrib-octopus) and nothing more.
--   Node-RED's login role (NODERED_PGUSER) is its member. No users, api_keys, audit_log or
--   any other portal table;
-- * octopus_reader: SELECT on the measurement data, for dashboards (Grafana's login role,
--   GRAFANA_PGUSER, is its member). Nothing else.
-- Both are NOLOGIN group roles with fixed names, so that these grants name roles that exist
-- whatever the login roles are called. They are made before the migrations run, by whoever
-- may make roles: launcher/postgres.py (the native cluster), postgres/docker-init/ (compose),
-- an administrator (an existing server: doc/security.md). The check below stops here, with
-- that hint, when they are missing: the portal then does not start until they exist.
--
-- THE RULE FOR EVERY LATER MIGRATION: nothing is granted by default. There is no schema-wide
-- grant and no default privilege for these groups, and EXECUTE on new functions is revoked
-- from PUBLIC by default (below): a new table, view or function is the owner's alone until
-- its migration grants it, table by table and privilege by privilege. A function Node-RED
-- calls that must do what Node-RED may not (make or drop partitions) runs as its owner:
-- `SELECT run_as_owner('name')` after every CREATE OR REPLACE of it (a replacement resets
-- SECURITY DEFINER and the search path). tests/launcher/test_database_roles.py holds the
-- decision for every table and function and fails on one it does not know.

DO $$
BEGIN
    IF (SELECT count(*) FROM pg_roles WHERE rolname IN ('octopus_flows', 'octopus_reader')) < 2 THEN
        RAISE EXCEPTION 'the roles octopus_flows and octopus_reader do not exist'
            USING HINT = 'They are made before the migrations by a role that may create roles: '
                'docker compose: `docker compose exec postgres sh /docker-entrypoint-initdb.d/10-create-app-role.sh`; '
                'an existing server: the commands in doc/security.md, "Database roles".';
    END IF;
END
$$;

-- 1. Functions: closed to PUBLIC -------------------------------------------------------------

-- PostgreSQL lets everyone execute a new function. Not here: this migration's and every
-- later one's functions run only for the owner and for whom a migration grants them.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = current_schema()
                AND p.proowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;

-- The function `name` (one of that name in this schema) runs with its owner's rights, with a
-- fixed search path: this schema, then pg_temp last, so that a caller's temporary table can
-- never stand in for one of ours. The schema is the one being migrated (public, or a test's).
CREATE FUNCTION run_as_owner(name text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER FUNCTION %I SECURITY DEFINER SET search_path = %I, pg_temp',
                   name, current_schema());
END
$$;

-- The ingest's batch makes the day's partition of measurements when it is missing, and the
-- upkeep makes and drops partitions: only the owner of a table may. So these run as the
-- owner; they take typed arrays, numbers and a worker's name, and build no SQL from them
-- but partition names of their own. Node-RED has no other way into measurements and the
-- rollups.
SELECT run_as_owner('ingest_batch');
SELECT run_as_owner('ingest_batch_with_receipt');
SELECT run_as_owner('run_maintenance');

-- 2. Node-RED (octopus_flows): exactly what its nodes run ---------------------------------

DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO octopus_flows, octopus_reader', current_schema());
END
$$;

-- octopus-ingest (lib/store.js): a batch, its receipts, its arrival-clock slot
GRANT EXECUTE ON FUNCTION ingest_batch, ingest_batch_with_receipt, ingest_claim_clock_slot
    TO octopus_flows;
GRANT SELECT ON ingest_receipts TO octopus_flows;
GRANT SELECT, INSERT, DELETE ON ingest_workers TO octopus_flows;

-- octopus-maintenance (lib/maintenance.js): rollups, partitions, retention
GRANT EXECUTE ON FUNCTION run_maintenance TO octopus_flows;

-- octopus-modbus (lib/modbus-devices.js): the device list, its figures written back
GRANT SELECT ON modbus_devices TO octopus_flows;
GRANT SELECT, INSERT, UPDATE ON modbus_poll_stats TO octopus_flows;

-- octopus-alerts (lib/alerts-store.js): rules and channels read; alerts raised and cleared
-- (never acknowledged, never edited otherwise), their events added; the starting point of
-- stale and offline rules from the registry
GRANT SELECT ON alert_rules, notification_channels, devices, attributes TO octopus_flows;
GRANT SELECT, INSERT ON alerts TO octopus_flows;
GRANT UPDATE (cleared_at, cleared_value) ON alerts TO octopus_flows;
GRANT INSERT ON alert_events TO octopus_flows;

-- 3. Dashboards (octopus_reader): the measurement data, read-only ---------------------------

-- The registry, raw readings, the per-minute rollups, and which minutes are not rolled up
-- yet (read those from raw rows, as webapp/octopus_portal/history.py does).
GRANT SELECT ON devices, attributes, measurements, measurements_minute, group_minute,
    rollup_invalidations TO octopus_reader;
GRANT EXECUTE ON FUNCTION minute_of TO octopus_reader;

-- 4. No JIT for any of Octopus's sessions --------------------------------------------------

-- 004 turned JIT off for the owner's sessions (it costs the history queries 0.5-1 s a call);
-- Node-RED's and the dashboards' sessions are other roles now. A role setting does not pass
-- to the members of a group, a database setting applies to every session in it. Only the
-- database's owner may set it: on a server where the owner is someone else, say so.
DO $$
BEGIN
    IF pg_has_role((SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE') THEN
        EXECUTE format('ALTER DATABASE %I SET jit = off', current_database());
    ELSE
        RAISE NOTICE 'not the owner of database %: ask its owner for ALTER DATABASE % SET jit = off',
            current_database(), quote_ident(current_database());
    END IF;
END
$$;
