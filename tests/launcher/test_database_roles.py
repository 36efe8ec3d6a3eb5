"""Least privilege in PostgreSQL (postgres/migrations/010_database_roles.sql, launcher/postgres.py):
Node-RED's role runs the ingest, the rollups and the retention and is refused the portal's
tables; the dashboards' role reads the measurement data and nothing else, and writes nothing;
every table and function has an explicit decision; the launcher makes the roles, twice safely."""
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import errors, sql

from launcher import postgres
from launcher.stack import Stack, isolated_config
from tests.helpers import ROOT

FLOWS, READER = postgres.FLOWS_GROUP, postgres.READER_GROUP

# What each group may do with every table of the schema (partitions follow their parent).
# A migration that adds a table adds it here too, with the grants it decided (the rule is in
# 010_database_roles.sql): a table missing here fails test_every_table_has_a_decision.
TABLES = {
    # table:                (octopus_flows,                  octopus_reader)
    "devices":               ({"SELECT"},                     {"SELECT"}),
    "attributes":            ({"SELECT"},                     {"SELECT"}),
    "measurements":          (set(),                          {"SELECT"}),
    "measurements_minute":   (set(),                          {"SELECT"}),
    "group_minute":          (set(),                          {"SELECT"}),
    "rollup_invalidations":  (set(),                          {"SELECT"}),
    "rejects":               (set(),                          set()),
    "ingest_receipts":       ({"SELECT"},                     set()),
    "ingest_workers":        ({"SELECT", "INSERT", "DELETE"}, set()),
    "modbus_devices":        ({"SELECT"},                     set()),
    "modbus_poll_stats":     ({"SELECT", "INSERT", "UPDATE"}, set()),
    "alert_rules":           ({"SELECT"},                     set()),
    "notification_channels": ({"SELECT"},                     set()),
    "alerts":                ({"SELECT", "INSERT"},           set()),
    "alert_events":          ({"INSERT"},                     set()),
    "users":                 (set(),                          set()),
    "api_keys":              (set(),                          set()),
    "audit_log":             (set(),                          set()),
    "device_accounts":       (set(),                          set()),
    "device_enrolments":     (set(),                          set()),
    "schema_migrations":     (set(),                          set()),
    # views of 011 for the dashboards: rejects without their payload, Modbus polling
    # without the devices' addresses
    "reject_log":            (set(),                          {"SELECT"}),
    "modbus_poll_status":    (set(),                          {"SELECT"}),
}
# Column grants on top of the table's: (table, group) -> {privilege: columns}
COLUMNS = {("alerts", FLOWS): {"UPDATE": {"cleared_at", "cleared_value"}}}
# Every function: (who may execute it besides the owner, whether it runs as its owner)
FUNCTIONS = {
    "ingest_batch":               ({FLOWS}, True),
    "ingest_keyed_batch":         ({FLOWS}, True),
    "ingest_keyed_batch_with_receipt": ({FLOWS}, True),
    "run_maintenance":            ({FLOWS}, True),
    "ingest_claim_clock_slot":    ({FLOWS}, False),
    "minute_of":                  ({READER}, False),
    "minute_series":              ({READER}, False),
    "group_minute_series":        ({READER}, False),
    "refresh_rollups":            (set(), False),
    "ensure_partition":           (set(), False),
    "drop_partitions_before":     (set(), False),
    "with_partition_lock_timeout": (set(), False),
    "run_as_owner":               (set(), False),
}
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")

INGEST_SQL = """SELECT ingest_keyed_batch_with_receipt(
    '{planta}', '{sala}', '{d1}', '{temperatura}', '{°C}', %(last_ts)s::timestamptz[],
    '{20.5}', '{NULL}', %(key)s::int[], %(ts)s::timestamptz[], %(num)s::float8[], %(txt)s::text[],
    '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}',
    'w1', 1, 1, '{1}', '{42}')"""


IN_2000 = datetime(2000, 1, 1, 10, 0, tzinfo=timezone.utc)


def readings(*timestamps):
    """ingest_keyed_batch's arrays: one reading of planta/sala/d1/temperatura per time."""
    n = len(timestamps)
    return dict(last_ts=[max(timestamps)], key=[1] * n, ts=list(timestamps), num=[20.5] * n,
                txt=[None] * n)


@pytest.fixture
def connect(fresh_db, pg_cluster):
    """connect(kind): an autocommit connection to the test's database as the owner
    ('owner'), Node-RED's role ('nodered') or the dashboards' ('grafana')."""
    opened = []

    def make(kind):
        params = fresh_db if kind == "owner" else dict(pg_cluster.logins[kind],
                                                       dbname=fresh_db["dbname"])
        opened.append(psycopg.connect(**params, autocommit=True))
        return opened[-1]

    yield make
    for conn in opened:
        conn.close()


def refused(conn, statement, params=None):
    """True when PostgreSQL refuses `statement` for lack of a privilege."""
    try:
        conn.execute(statement, params)
    except errors.InsufficientPrivilege:
        return True
    return False


def test_nodered_role_runs_an_ingest_batch_rollups_and_retention(connect):
    nodered, owner = connect("nodered"), connect("owner")
    ingested = nodered.execute(INGEST_SQL, readings(
        datetime.now(timezone.utc), IN_2000, IN_2000 + timedelta(seconds=30))).fetchone()[0]
    assert ingested == 3
    # the batch made the partition of a day in 2000: only the owner may, the function did
    assert owner.execute("SELECT to_regclass('measurements_20000101')").fetchone()[0]
    assert owner.execute("SELECT count(*) FROM ingest_receipts").fetchone()[0] == 1

    result = nodered.execute("SELECT run_maintenance(30, 30)").fetchone()[0]
    assert result["partitions_busy"] is False
    assert "measurements_20000101" in result["partitions_dropped"]  # retention
    assert "measurements_minute_200001" in result["partitions_dropped"]
    assert result["refreshed_minutes"] >= 1  # the minute of 2000 was rolled up, then dropped
    assert owner.execute("SELECT count(*) FROM measurements").fetchone()[0] == 1
    # partitions ahead of time, made as the owner
    assert owner.execute("SELECT to_regclass('measurements_' || "
                         "to_char(now() AT TIME ZONE 'UTC' + interval '2 days', 'YYYYMMDD'))"
                         ).fetchone()[0]


def test_nodered_role_is_refused_users_keys_and_everything_else(connect):
    nodered = connect("nodered")
    for statement in (
            "SELECT * FROM users", "SELECT * FROM api_keys", "SELECT * FROM audit_log",
            "SELECT * FROM device_accounts", "SELECT * FROM rejects", "SELECT * FROM measurements",
            "SELECT * FROM schema_migrations",
            "INSERT INTO measurements (attribute_id, ts, num) VALUES (1, now(), 1)",
            "DELETE FROM measurements", "TRUNCATE measurements", "DROP TABLE measurements",
            "UPDATE alerts SET acked_by = 'x', acked_at = now()",
            "INSERT INTO users (username, password_hash) VALUES ('x', 'x')",
            "SELECT drop_partitions_before('measurements', 'day', now())",
            "SELECT ensure_partition('users', 'day', now())",
            "SELECT with_partition_lock_timeout('DROP TABLE users')",
            "SELECT run_as_owner('refresh_rollups')",
            "CREATE TABLE mine (x int)"):
        assert refused(nodered, statement), f"Node-RED's role may: {statement}"


def test_a_callers_temporary_table_cannot_stand_in_for_ours(connect):
    """The functions that run as the owner search pg_temp last: a temporary `devices` of
    the caller's is not where the batch writes."""
    nodered, owner = connect("nodered"), connect("owner")
    nodered.execute("CREATE TEMPORARY TABLE devices (LIKE public.devices)")
    nodered.execute(INGEST_SQL, readings(datetime.now(timezone.utc)))
    assert nodered.execute("SELECT count(*) FROM pg_temp.devices").fetchone()[0] == 0
    assert owner.execute("SELECT count(*) FROM devices").fetchone()[0] == 1


def test_grafana_role_reads_the_measurement_data_and_nothing_else(connect):
    connect("nodered").execute(INGEST_SQL, readings(datetime.now(timezone.utc)))
    grafana = connect("grafana")
    for table in ("measurements", "measurements_minute", "group_minute", "devices",
                  "attributes", "rollup_invalidations"):
        grafana.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(table)))
    row = grafana.execute("""
        SELECT d.name, a.name, minute_of(m.ts), m.num FROM measurements m
          JOIN attributes a ON a.id = m.attribute_id JOIN devices d ON d.id = a.device_id
    """).fetchone()
    assert row[0] == "d1" and row[3] == 20.5
    for statement in (
            "INSERT INTO measurements (attribute_id, ts, num) VALUES (1, now(), 1)",
            "UPDATE measurements SET num = 0", "DELETE FROM measurements",
            "UPDATE devices SET status = 'offline'", "DELETE FROM rollup_invalidations",
            "SELECT * FROM users", "SELECT * FROM api_keys", "SELECT * FROM audit_log",
            "SELECT * FROM alerts", "SELECT * FROM rejects", "SELECT * FROM modbus_devices",
            "SELECT run_maintenance(0, 0)", "SELECT ingest_claim_clock_slot('x')",
            "CREATE TABLE mine (x int)"):
        assert refused(grafana, statement), f"the dashboards' role may: {statement}"
    assert refused(grafana, INGEST_SQL, readings(datetime.now(timezone.utc)))


def schema_relations(conn):
    """Every table, view, sequence of the public schema (not partitions): (name, kind)."""
    return conn.execute("""
        SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
           AND NOT c.relispartition""").fetchall()


def test_every_table_has_a_decision_and_the_grants_are_exactly_it(connect):
    owner = connect("owner")
    relations = schema_relations(owner)
    tables = {name for name, kind in relations if kind != "S"}
    assert tables - set(TABLES) == set(), (
        "decide what Node-RED (octopus_flows) and dashboards (octopus_reader) may do with "
        "these tables, grant it in their migration and write it in TABLES")
    assert set(TABLES) - tables == set(), "tables in TABLES that no migration makes"
    for table, expected in TABLES.items():
        for group, allowed in zip((FLOWS, READER), expected):
            granted = {p for p in TABLE_PRIVILEGES if owner.execute(
                "SELECT has_table_privilege(%s, %s, %s)", (group, table, p)).fetchone()[0]}
            assert granted == allowed, f"{group} on {table}"
            columns = {}
            for p in ("SELECT", "INSERT", "UPDATE", "REFERENCES"):
                names = {c for (c,) in owner.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
                    " AND NOT attisdropped AND has_column_privilege(%s, attrelid, attnum, %s)",
                    (table, group, p))}
                if p not in granted and names:
                    columns[p] = names
            assert columns == COLUMNS.get((table, group), {}), f"{group}'s column grants on {table}"
    for name, kind in relations:
        if kind == "S":  # identity sequences: inserts do not need them, nobody gets them
            for group in (FLOWS, READER):
                assert not owner.execute("SELECT has_sequence_privilege(%s, %s, 'USAGE')"
                                         " OR has_sequence_privilege(%s, %s, 'SELECT')",
                                         (group, name, group, name)).fetchone()[0], name


def test_every_function_has_a_decision_and_none_is_open_to_public(connect):
    owner = connect("owner")
    rows = owner.execute("""
        SELECT p.proname, p.prosecdef, p.proconfig,
               has_function_privilege('public', p.oid, 'EXECUTE'),
               has_function_privilege(%s, p.oid, 'EXECUTE'),
               has_function_privilege(%s, p.oid, 'EXECUTE')
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public'""", (FLOWS, READER)).fetchall()
    names = {r[0] for r in rows}
    assert names - set(FUNCTIONS) == set(), "decide who may execute these functions (FUNCTIONS)"
    for name, definer, config, public, flows, reader in rows:
        allowed, runs_as_owner = FUNCTIONS[name]
        assert not public, f"{name} is executable by everyone"
        assert {g for g, ok in ((FLOWS, flows), (READER, reader)) if ok} == allowed, name
        assert definer == runs_as_owner, f"{name}: SECURITY DEFINER should be {runs_as_owner}"
        if definer:  # a fixed search path, the caller's temporary schema last
            assert config == ["search_path=public, pg_temp"], f"{name}: {config}"


def test_no_jit_for_the_other_roles_sessions(pg_cluster):
    """004 turned JIT off for the owner only; 010 for every session in the database. In the
    database the migrations ran in: a database copied from it (fresh_db) has no settings."""
    for kind in ("nodered", "grafana"):
        params = dict(pg_cluster.logins[kind], dbname=pg_cluster.app_role["dbname"])
        with psycopg.connect(**params) as conn:
            assert conn.execute("SHOW jit").fetchone()[0] == "off", kind


def test_migration_010_stops_with_a_hint_when_the_groups_are_missing(fresh_db, pg_cluster):
    """Everything happens in one transaction that is rolled back: the renamed role too."""
    migrations = sorted((ROOT / "postgres/migrations").glob("*.sql"))
    with psycopg.connect(pg_cluster.superuser_conninfo(fresh_db["dbname"])) as conn:
        try:
            conn.execute(sql.SQL("ALTER ROLE {} RENAME TO octopus_reader_gone")
                         .format(sql.Identifier(READER)))
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(fresh_db["user"])))
            conn.execute("CREATE SCHEMA before_roles")
            conn.execute("SET search_path TO before_roles")
            for path in migrations:
                if path.name.startswith("010_"):
                    with pytest.raises(errors.RaiseException) as raised:
                        conn.execute(path.read_text())
                    break
                conn.execute(path.read_text())
            else:
                pytest.fail("no migration 010")
        finally:
            conn.rollback()
    assert "octopus_flows and octopus_reader do not exist" in str(raised.value)
    assert "doc/security.md" in raised.value.diag.message_hint
    assert "docker compose exec postgres" in raised.value.diag.message_hint


def test_launcher_makes_the_roles_safely_twice_and_applies_a_new_password(pg_cluster, fresh_db):
    superuser = pg_cluster.superuser_conninfo()
    login = dict(host=pg_cluster.bind, port=pg_cluster.port, dbname=fresh_db["dbname"],
                 user="test_nodered_twice")
    try:
        postgres.ensure_platform_roles(superuser, {login["user"]: ("first", FLOWS)})
        postgres.ensure_platform_roles(superuser, {login["user"]: ("second", FLOWS)})
        with psycopg.connect(**login, password="second") as conn:
            assert conn.execute("SELECT pg_has_role(current_user, %s, 'USAGE'),"
                                " pg_has_role(current_user, %s, 'USAGE')",
                                (FLOWS, READER)).fetchone() == (True, False)
            assert conn.execute("SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles"
                                " WHERE rolname = current_user").fetchone()[0] is False
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(**login, password="first")
    finally:
        with psycopg.connect(superuser, autocommit=True) as conn:
            conn.execute("DROP ROLE IF EXISTS test_nodered_twice")


def test_launcher_sets_and_clears_a_login_roles_statement_timeout(pg_cluster, fresh_db):
    superuser = pg_cluster.superuser_conninfo()
    login = dict(host=pg_cluster.bind, port=pg_cluster.port, dbname=fresh_db["dbname"],
                 user="test_grafana_timeout", password="pw")
    try:
        postgres.ensure_platform_roles(superuser, {login["user"]: ("pw", READER)},
                                       {login["user"]: "200ms"})
        with psycopg.connect(**login) as conn:
            with pytest.raises(errors.QueryCanceled, match="statement timeout"):
                conn.execute("SELECT pg_sleep(2)")
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            postgres.ensure_platform_roles(superuser, {login["user"]: ("pw", READER)},
                                           {login["user"]: "half a minute"})
        postgres.ensure_platform_roles(superuser, {login["user"]: ("pw", READER)},
                                       {login["user"]: "0"})
        with psycopg.connect(**login) as conn:
            assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)
    finally:
        with psycopg.connect(superuser, autocommit=True) as conn:
            conn.execute("DROP ROLE IF EXISTS test_grafana_timeout")


def stack(tmp_path, **changes):
    """A Stack (nothing started) for an external server, with `changes` to its settings."""
    config = dict(isolated_config(), OCTOPUS_PG_LOCAL="false")
    config.update(changes)
    return Stack(config, state_dir=tmp_path)


@pytest.mark.parametrize("changes", [
    {"NODERED_PGUSER": "octopus"}, {"GRAFANA_PGUSER": "octopus_nodered"},
    {"NODERED_PGUSER": "postgres"}, {"GRAFANA_PGUSER": "octopus_reader"},
    {"NODERED_PGUSER": ""}])
def test_the_three_roles_must_be_distinct_and_not_reserved(tmp_path, changes):
    assert stack(tmp_path, PGUSER="octopus").database_logins()
    with pytest.raises(ValueError, match="three different roles"):
        stack(tmp_path, PGUSER="octopus", **changes).database_logins()


def test_nodered_gets_its_own_role_and_no_other_components_secret(tmp_path):
    platform = stack(tmp_path)
    config = platform.config
    env = platform.nodered_env(NODERED_FLOWS_FILE="/x")
    assert (env["PGUSER"], env["PGPASSWORD"]) == (config["NODERED_PGUSER"],
                                                  config["NODERED_PGPASSWORD"])
    assert env["NODERED_FLOWS_FILE"] == "/x"
    for key in ("MQTT_NODERED_PASSWORD", "NODERED_CREDENTIAL_SECRET", "NODERED_ADMIN_PASSWORD"):
        assert env[key] == config[key], key
    for key in ("PG_SUPERUSER_PASSWORD", "GRAFANA_PGPASSWORD", "PORTAL_SECRET_KEY",
                "PORTAL_ADMIN_PASSWORD", "MQTT_PORTAL_PASSWORD", "MQTT_SIMULATOR_PASSWORD"):
        assert key not in env, key
    assert config["PGPASSWORD"] not in env.values(), "the owner's password reached Node-RED"
