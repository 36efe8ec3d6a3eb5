"""Acceptance 4 of issue 8: the documented backup and restore (`./octopus backup FILE`,
`./octopus restore FILE`, doc/operations.md) bring every row back.

A database filled with some of everything (readings ingested by Node-RED's role over three
days, their rollups, devices, rejects, users, API keys, alert rules, channels, alerts and
their events, Modbus devices and their figures, the audit log, device accounts and
enrolments) is backed up with the command, then restored by the command on a machine that
has nothing yet (a new local cluster, made by the restore). Every table is compared with
the original, rows counted and checksummed; the restored database is then used: the
migrations find nothing to do, Node-RED's role ingests through migration 010's grants and is
still refused the portal's tables, the dashboards' role reads. A restore over that one
replaces it, one while PostgreSQL runs is refused, and a backup whose rows do not come back
fails."""
import json
import os
import subprocess
import sys
import tarfile
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import errors, sql

from launcher import backup, postgres, settings
from launcher.processes import Supervisor
from octopus_portal.certificates import ensure_certificates
from octopus_portal.migrate import migrate
from tests.helpers import ROOT, free_port, make_state_dir

NOW = datetime.now(timezone.utc).replace(microsecond=0)
# the tables that must hold rows in the sample, so that "every row back" means something;
# a table a later migration adds is compared too
SAMPLED = {"devices", "attributes", "measurements", "measurements_minute", "group_minute",
           "rollup_invalidations", "rejects", "users", "ingest_receipts", "ingest_workers",
           "api_keys", "modbus_devices", "modbus_poll_stats", "alert_rules", "alerts",
           "alert_events", "notification_channels", "audit_log", "device_accounts",
           "device_enrolments", "schema_migrations"}
INGEST_SQL = """SELECT ingest_keyed_batch_with_receipt(
    %(k_site)s::text[], %(k_room)s::text[], %(k_device)s::text[], %(k_attribute)s::text[],
    %(k_unit)s::text[], %(k_ts)s::timestamptz[], %(k_num)s::float8[], %(k_txt)s::text[],
    %(key)s::int[], %(ts)s::timestamptz[], %(num)s::float8[], %(txt)s::text[],
    %(s_site)s::text[], %(s_room)s::text[], %(s_device)s::text[], %(s_status)s::text[],
    %(s_ts)s::timestamptz[],
    %(r_topic)s::text[], %(r_reason)s::text[], %(r_payload)s::bytea[], %(r_size)s::int[],
    %(worker)s, %(seq)s, 1, %(packets)s::int[], %(hashes)s::bigint[])"""
OWNER_ROWS = [
    "INSERT INTO users (username, password_hash, role) VALUES"
    " ('ana', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA', 'admin'), ('bo', 'x', 'viewer')",
    "INSERT INTO api_keys (name, prefix, key_hash, scopes, site, created_by) VALUES"
    " ('grafana', 'oct_ab12', '\\x00ff10'::bytea, '{read}', 'planta',"
    "  (SELECT id FROM users WHERE username = 'ana'))",
    "INSERT INTO alert_rules (name, kind, devices, attribute, condition, high, hysteresis,"
    " severity, message) VALUES ('hot', 'threshold', 'planta/sala/+', 'temperatura', 'above',"
    " 30, 0.5, 'warning', 'too hot: {value} °C'), ('gone', 'offline', 'planta/+/+', NULL, NULL,"
    " NULL, 0, 'critical', '')",
    "INSERT INTO notification_channels (name, kind, target, severities) VALUES"
    " ('ops', 'email', 'ops@example.com', '{warning,critical}'),"
    " ('hook', 'webhook', 'http://127.0.0.1:9/hook', '{critical}')",
    "INSERT INTO alerts (rule_id, rule_name, site, room, device, attribute, severity, message,"
    " raised_value, acked_at, acked_by) SELECT id, name, 'planta', 'sala', 'd1', 'temperatura',"
    " 'warning', 'too hot: 31 °C', '31', now(), 'ana' FROM alert_rules WHERE name = 'hot'",
    "INSERT INTO alert_events (alert_id, kind, value, actor) SELECT id, k, '31', 'ana'"
    " FROM alerts, unnest(ARRAY['raised', 'notified', 'acknowledged']) AS k",
    "INSERT INTO modbus_devices (site, room, name, host, port, unit_id, profile) VALUES"
    " ('planta', 'subestacion', 'reconectador1', '127.0.0.1', 5020, 1, 'osm27')",
    "INSERT INTO modbus_poll_stats (device_id, worker, since, status, polls, ok, timeouts,"
    " last_error) SELECT id, 'w1', now(), 'online', 100, 98, 2, 'timeout' FROM modbus_devices",
    "INSERT INTO audit_log (actor, actor_id, action, subject, detail, address) VALUES"
    " ('ana', 1, 'user.create', 'bo', '{\"role\": \"viewer\"}', '192.0.2.7'),"
    " ('ana', 1, 'api_key.create', 'grafana', '{}', NULL)",
    "INSERT INTO device_accounts (site, room, device, username, client_certificate_serial)"
    " VALUES ('planta', 'sala', 'd1', 'dev-planta-sala-d1', '4f2a')",
    "INSERT INTO device_enrolments (client_id, site, room, device) VALUES"
    " ('esp32-77', 'planta', 'sala', 'd9')",
    # a minute still to roll up: the upkeep has not run since it was written
    "INSERT INTO rollup_invalidations (minute) VALUES (date_trunc('minute', now()))",
]


def batch(seq, start, count):
    """One ingest batch: `count` readings of two devices and two attributes from `start`,
    a text state, an availability status and a reject with bytes that are not UTF-8."""
    rows = [("planta", "sala", f"d{i % 2 + 1}", ("temperatura", "humedad")[i // 2 % 2],
             start + timedelta(seconds=7 * i), 20 + (i % 97) / 10, None, "°C")
            for i in range(count)]
    rows.append(("planta", "sala", "d1", "estado", start, None, "abierto ✓", None))
    # as lib/batch.js sends them: each attribute once with its newest reading, then a key
    # (its position, from 1) per reading
    newest = {}
    for row in rows:
        if row[:4] not in newest or row[4] >= newest[row[:4]][4]:
            newest[row[:4]] = row
    position = {attribute: i + 1 for i, attribute in enumerate(newest)}
    k_columns = list(zip(*newest.values()))
    return dict(zip(("k_site", "k_room", "k_device", "k_attribute", "k_ts", "k_num", "k_txt",
                     "k_unit"), map(list, k_columns)),
                key=[position[row[:4]] for row in rows], ts=[row[4] for row in rows],
                num=[row[5] for row in rows], txt=[row[6] for row in rows],
                s_site=["planta"], s_room=["sala"], s_device=["d1"], s_status=["online"],
                s_ts=[start], r_topic=["planta/sala"], r_reason=["too few levels"],
                r_payload=[b"\xff\xfe23"], r_size=[4], worker="w1", seq=seq,
                packets=[seq], hashes=[seq * 1000003])


def fill(db, nodered_login):
    """Some of everything, the readings written as Node-RED writes them."""
    with psycopg.connect(**nodered_login, dbname=db["dbname"], autocommit=True) as nodered:
        nodered.execute("SELECT ingest_claim_clock_slot('w1')")
        for day in range(3):
            nodered.execute(INGEST_SQL, batch(day + 1, NOW - timedelta(days=day, hours=2), 400))
        nodered.execute("SELECT run_maintenance(0, 0)")  # the rollups; 0: keep for ever
    with psycopg.connect(**db, autocommit=True) as owner:
        for statement in OWNER_ROWS:
            owner.execute(statement)
        # what migration 010 set on the database (a copy of the tests' template lacks it)
        owner.execute(sql.SQL("ALTER DATABASE {} SET jit = off").format(
            sql.Identifier(db["dbname"])))


def snapshot(conninfo):
    """{table: (rows, checksum of the rows)} of every table, and the partitions' names."""
    with psycopg.connect(conninfo) as conn:
        tables = backup.table_rows(conn)
        found = {}
        for table in tables:
            found[table] = conn.execute(sql.SQL(
                "SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '')"
                " FROM {} t").format(sql.Identifier(table))).fetchone()
        partitions = sorted(r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relispartition"))
    return found, partitions


def write_env(path, **values):
    config = settings.generated(ROOT / ".env.example")
    config.update({"OCTOPUS_BIND": "127.0.0.1", "MQTT_PORT": str(free_port())}, **values)
    path.write_text("".join(f"{k}={v}\n" for k, v in config.items()))
    path.chmod(0o600)
    return config


def octopus(env_file, state_dir, *args):
    """`./octopus ARGS` past the install step: `python -m launcher ARGS`, as the script runs it."""
    env = dict(os.environ, OCTOPUS_ENV_FILE=str(env_file), OCTOPUS_STATE_DIR=str(state_dir),
               PYTHONPATH=os.pathsep.join([str(ROOT / "webapp"), str(ROOT / "simulators"),
                                           str(ROOT)]))
    for key in settings.PG_VARIABLES:
        env.pop(key, None)
    return subprocess.run([sys.executable, "-m", "launcher", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)


def conninfo(config, role="PGUSER", password="PGPASSWORD"):
    return psycopg.conninfo.make_conninfo(host=config["PGHOST"], port=config["PGPORT"],
                                          dbname=config["PGDATABASE"], user=config[role],
                                          password=config[password])


@pytest.fixture
def source(fresh_db, pg_cluster, tmp_path):
    """The platform to back up: the test cluster's database (as an external server), device
    accounts and the platform CA in its state folder."""
    fill(fresh_db, pg_cluster.logins["nodered"])
    state = make_state_dir("octopus-backup-src-")
    dynsec = state / "mosquitto" / "data" / backup.DYNSEC
    dynsec.parent.mkdir(parents=True)
    dynsec.write_text(json.dumps({"clients": [{"username": "dev-planta-sala-d1",
                                               "password": "hashed", "roles": []}],
                                  "groups": [], "roles": [], "defaultACLAccess": {}}))
    ensure_certificates(state / "tls", ["broker.example"])
    env_file = tmp_path / "source.env"
    config = write_env(env_file, OCTOPUS_PG_LOCAL="false", PGHOST=fresh_db["host"],
                       PGPORT=str(fresh_db["port"]), PGDATABASE=fresh_db["dbname"],
                       PGUSER=fresh_db["user"], PGPASSWORD=fresh_db["password"])
    yield env_file, state, config
    subprocess.run(["rm", "-rf", str(state)], check=False)


@pytest.fixture
def new_machine(tmp_path):
    """A state folder with nothing in it and a .env of its own (the secrets differ from the
    source's: a restore takes the roles' passwords from the .env in use)."""
    state = make_state_dir("octopus-backup-dst-")
    env_file = tmp_path / "restored.env"
    config = write_env(env_file, OCTOPUS_PG_LOCAL="true", PGHOST="127.0.0.1",
                       PGPORT=str(free_port()), PGUSER="octopus")
    supervisor = Supervisor(state / "log-test")
    yield env_file, state, config, supervisor
    supervisor.stop_all()
    subprocess.run(["rm", "-rf", str(state)], check=False)


def start_cluster(state, config, supervisor):
    """Start the cluster that the restore made in `state`, as `./octopus up` would."""
    cluster = postgres.LocalCluster(state / "postgres", config["PGPORT"], "127.0.0.1",
                                    config["PG_SUPERUSER_PASSWORD"])
    supervisor.start("postgres", cluster.server_command(), **postgres.run_as())
    supervisor.wait_ready("postgres", lambda: psycopg.connect(
        cluster.superuser_conninfo()).close() or True)
    return cluster


def test_backup_then_restore_on_a_new_machine_brings_every_row_back(source, new_machine,
                                                                    tmp_path):
    env_file, state, config = source
    original, partitions = snapshot(conninfo(config))
    assert set(original) >= SAMPLED, "a table went missing from the schema"
    empty = sorted(t for t in SAMPLED if original[t][0] == 0)
    assert not empty, f"the sample has no rows of {empty}: add some to fill()"

    archive = tmp_path / "backups" / "octopus.tar"
    result = octopus(env_file, state, "backup", str(archive))
    assert result.returncode == 0, result.stdout + result.stderr
    assert oct(archive.stat().st_mode & 0o777) == "0o600"  # password hashes, the CA's key
    with tarfile.open(archive) as tar:
        assert set(tar.getnames()) == {"manifest.json", "octopus.dump", "dynamic-security.json",
                                       "tls/ca.crt", "tls/ca.key", "tls/server.crt",
                                       "tls/server.key"}
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest["database"]["rows"] == {t: n for t, (n, _) in original.items()}
    assert manifest["database"]["database_settings"] == {"jit": "off"}

    env2, state2, config2, supervisor = new_machine
    refused = octopus(env2, state2, "restore", str(archive))  # no --yes, no terminal
    assert refused.returncode == 2 and "not confirmed" in refused.stdout
    assert not (state2 / "postgres").exists()

    result = octopus(env2, state2, "restore", "--yes", str(archive))
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (state2 / "postgres" / "postmaster.pid").exists(), "the restore stops its server"
    for name in ("ca.crt", "ca.key", "server.crt", "server.key"):
        assert (state2 / "tls" / name).read_bytes() == (state / "tls" / name).read_bytes()
    dynsec = state2 / "mosquitto" / "data" / backup.DYNSEC
    assert dynsec.read_bytes() == (state / "mosquitto" / "data" / backup.DYNSEC).read_bytes()
    assert oct(dynsec.stat().st_mode & 0o777) == "0o600"
    assert oct((state2 / "tls" / "ca.key").stat().st_mode & 0o777) == "0o600"

    start_cluster(state2, config2, supervisor)
    restored = conninfo(config2)
    assert snapshot(restored) == (original, partitions)
    check_the_restored_database_works(config2)

    # PostgreSQL running: the restore refuses to touch it
    busy = octopus(env2, state2, "restore", "--yes", str(archive))
    assert busy.returncode == 1 and "stop Octopus" in busy.stdout, busy.stdout

    # a restore over an existing installation replaces its database: a later row is gone
    with psycopg.connect(restored, autocommit=True) as conn:
        conn.execute("INSERT INTO users (username, password_hash) VALUES ('later', 'x')")
    supervisor.stop("postgres")
    result = octopus(env2, state2, "restore", "--yes", str(archive))
    assert result.returncode == 0, result.stdout + result.stderr
    supervisor.start("postgres", postgres.LocalCluster(
        state2 / "postgres", config2["PGPORT"], "127.0.0.1",
        config2["PG_SUPERUSER_PASSWORD"]).server_command(), **postgres.run_as())
    supervisor.wait_ready("postgres", lambda: psycopg.connect(restored).close() or True)
    assert snapshot(restored) == (original, partitions)


def check_the_restored_database_works(config):
    owner = conninfo(config)
    assert migrate(owner, log=lambda m: None) == [], "the schema is the current one"
    with psycopg.connect(owner) as conn:
        settings_row = conn.execute(
            "SELECT setconfig FROM pg_db_role_setting WHERE setrole = 0 AND setdatabase ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())").fetchone()
    assert settings_row and "jit=off" in settings_row[0], "migration 010's database setting"
    # Node-RED's role (its password from this machine's .env) ingests through the grants
    with psycopg.connect(conninfo(config, "NODERED_PGUSER", "NODERED_PGPASSWORD"),
                         autocommit=True) as nodered:
        new = batch(99, NOW - timedelta(minutes=5), 4)
        assert nodered.execute(INGEST_SQL, dict(new, worker="w2")).fetchone()[0] == 5
        nodered.execute("SELECT run_maintenance(0, 0)")
        with pytest.raises(errors.InsufficientPrivilege):
            nodered.execute("SELECT count(*) FROM users")
    with psycopg.connect(conninfo(config, "GRAFANA_PGUSER", "GRAFANA_PGPASSWORD")) as grafana:
        assert grafana.execute("SELECT count(*) FROM measurements_minute").fetchone()[0] > 0
        with pytest.raises(errors.InsufficientPrivilege):
            grafana.execute("SELECT count(*) FROM api_keys")


def test_a_backup_whose_rows_do_not_come_back_fails_and_a_full_database_is_refused(
        fresh_db, pg_cluster, tmp_path):
    owner = psycopg.conninfo.make_conninfo(**fresh_db)
    fill(fresh_db, pg_cluster.logins["nodered"])
    archive = tmp_path / "octopus.tar"
    backup.create(archive, owner, tmp_path / "none.json", tmp_path / "no-tls", log=print)
    work = tmp_path / "work"
    manifest = backup.open_archive(archive, work)
    assert manifest["files"] == ["octopus.dump"]

    with pytest.raises(backup.BackupError, match="not empty"):
        backup.restore_database(work / "octopus.dump", manifest, owner)

    name = fresh_db["dbname"] + "_copy"
    with psycopg.connect(pg_cluster.superuser_conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER octopus").format(sql.Identifier(name)))
    try:
        manifest["database"]["rows"]["measurements"] += 1  # one row the restore cannot find
        with pytest.raises(backup.BackupError, match="measurements"):
            backup.restore_database(work / "octopus.dump", manifest,
                                    psycopg.conninfo.make_conninfo(**dict(fresh_db, dbname=name)))
    finally:
        with psycopg.connect(pg_cluster.superuser_conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
