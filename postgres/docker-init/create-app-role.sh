#!/bin/sh
# The platform's database roles and database. Run by the postgres image when it creates the
# cluster (docker-compose.yaml mounts it into /docker-entrypoint-initdb.d); the natively
# started cluster gets the same from launcher/postgres.py.
#
# * the application's role, owner of the application's database, so that the portal's
#   migrations (octopus_portal.migrate) create the schema without a superuser;
# * the group roles octopus_flows and octopus_reader, which migration 010 grants to, and
#   their members: Node-RED's login role and the dashboards' read-only one (doc/security.md,
#   "Database roles").
#
# Safe to run again, and that is how a volume made before these roles gets them, and how a
# password changed in .env reaches an existing cluster (`docker compose up -d` first, so that
# the container has the new values):
#     docker compose exec postgres sh /docker-entrypoint-initdb.d/10-create-app-role.sh
# It makes what is missing and sets every login role's password again.
#
# Names and passwords come from OCTOPUS_DB_NAME, OCTOPUS_DB_USER, OCTOPUS_DB_PASSWORD
# (PGDATABASE, PGUSER, PGPASSWORD of .env), NODERED_PGUSER, NODERED_PGPASSWORD,
# GRAFANA_PGUSER, GRAFANA_PGPASSWORD; psql quotes them (%I, %L), nothing is pasted into SQL.
# GRAFANA_PG_STATEMENT_TIMEOUT (default 30s; 0: none) becomes the dashboards' role's
# statement_timeout, as launcher/postgres.py sets it natively.
set -eu

: "${OCTOPUS_DB_NAME:?OCTOPUS_DB_NAME is not set}"
: "${OCTOPUS_DB_USER:?OCTOPUS_DB_USER is not set}"
: "${OCTOPUS_DB_PASSWORD:?OCTOPUS_DB_PASSWORD is not set}"
: "${NODERED_PGUSER:?NODERED_PGUSER is not set}"
: "${NODERED_PGPASSWORD:?NODERED_PGPASSWORD is not set}"
: "${GRAFANA_PGUSER:?GRAFANA_PGUSER is not set}"
: "${GRAFANA_PGPASSWORD:?GRAFANA_PGPASSWORD is not set}"

# A login role named like another would get its password and its group's rights.
for name in "$NODERED_PGUSER" "$GRAFANA_PGUSER"; do
    case "$name" in
        "$OCTOPUS_DB_USER" | "${POSTGRES_USER:-postgres}" | octopus_flows | octopus_reader)
            echo "octopus: NODERED_PGUSER and GRAFANA_PGUSER must differ from PGUSER, from the superuser and from octopus_flows, octopus_reader (got $name)" >&2
            exit 1 ;;
    esac
done
if [ "$NODERED_PGUSER" = "$GRAFANA_PGUSER" ]; then
    echo "octopus: NODERED_PGUSER and GRAFANA_PGUSER must differ (both $NODERED_PGUSER)" >&2
    exit 1
fi

psql --no-psqlrc -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
     -v app_db="$OCTOPUS_DB_NAME" -v app_user="$OCTOPUS_DB_USER" \
     -v app_password="$OCTOPUS_DB_PASSWORD" \
     -v nodered_user="$NODERED_PGUSER" -v nodered_password="$NODERED_PGPASSWORD" \
     -v grafana_user="$GRAFANA_PGUSER" -v grafana_password="$GRAFANA_PGPASSWORD" \
     -v grafana_timeout="${GRAFANA_PG_STATEMENT_TIMEOUT:-30s}" <<'SQL'
SELECT format('CREATE ROLE %I NOLOGIN', grp)
  FROM unnest(ARRAY['octopus_flows', 'octopus_reader']) AS grp
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = grp) \gexec
SELECT format('%s ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L',
              CASE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = name) THEN 'ALTER' ELSE 'CREATE' END,
              name, password),
       CASE WHEN grp IS NOT NULL THEN format('GRANT %I TO %I', grp, name) END
  FROM (VALUES (:'app_user', :'app_password', NULL),
               (:'nodered_user', :'nodered_password', 'octopus_flows'),
               (:'grafana_user', :'grafana_password', 'octopus_reader')) AS login(name, password, grp) \gexec
SELECT CASE WHEN :'grafana_timeout' = '0'
            THEN format('ALTER ROLE %I RESET statement_timeout', :'grafana_user')
            ELSE format('ALTER ROLE %I SET statement_timeout = %L', :'grafana_user', :'grafana_timeout')
       END \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'app_db', :'app_user')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app_db') \gexec
SQL
echo "octopus: database $OCTOPUS_DB_NAME and roles $OCTOPUS_DB_USER, $NODERED_PGUSER, $GRAFANA_PGUSER ready"
