#!/bin/sh
# Run once by the postgres image when it creates the cluster (docker-compose.yaml mounts it into
# /docker-entrypoint-initdb.d): the application's role and database, owned by that role, so
# the portal's migrations (octopus_portal.migrate) can create the schema without a superuser.
# The natively started cluster gets the same from launcher/postgres.py.
#
# Names and password come from OCTOPUS_DB_NAME, OCTOPUS_DB_USER, OCTOPUS_DB_PASSWORD
# (PGDATABASE, PGUSER, PGPASSWORD of .env); psql quotes them (%I, %L), nothing is pasted
# into SQL. A later change of PGPASSWORD in .env is not applied to an existing cluster:
#     docker compose exec postgres psql -U postgres -c "ALTER ROLE octopus PASSWORD '...'"
set -eu

: "${OCTOPUS_DB_NAME:?OCTOPUS_DB_NAME is not set}"
: "${OCTOPUS_DB_USER:?OCTOPUS_DB_USER is not set}"
: "${OCTOPUS_DB_PASSWORD:?OCTOPUS_DB_PASSWORD is not set}"

psql --no-psqlrc -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
     -v app_db="$OCTOPUS_DB_NAME" -v app_user="$OCTOPUS_DB_USER" \
     -v app_password="$OCTOPUS_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'app_user', :'app_password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'app_db', :'app_user')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app_db') \gexec
SQL
echo "octopus: role $OCTOPUS_DB_USER and database $OCTOPUS_DB_NAME ready"
