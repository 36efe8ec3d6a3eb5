"""The compose backup and restore of doc/operations.md, run line by line as written.

No Docker engine runs here, so `docker` is a stand-in that does what Compose would: `exec`
and `run` run the command with the service's environment (from docker-compose.yaml) and its
volumes (folders of the test), `cp` copies into a volume, `stop` and `up` do nothing. Each
container path a command names must be a volume of that service in docker-compose.yaml, and
the PostgreSQL tools run against a real PostgreSQL of the same major version as the image's.
The restore must bring every row back."""
import json
import os
import re
import subprocess
import sys

import psycopg
import pytest
from psycopg import sql

from launcher import postgres
from octopus_portal.certificates import ensure_certificates
from tests.compose.test_compose import COMPOSE_FILE, dummy_env, interpolate, named_volumes
from tests.helpers import ROOT
from tests.integration.test_backup_restore import fill, snapshot

OPERATIONS = ROOT / "doc" / "operations.md"
STAND_IN = r'''
import json, os, shutil, sys

config = json.loads(os.environ["STAND_IN"])
calls = open(os.path.join(config["root"], "calls.log"), "a")
calls.write(" ".join(sys.argv[1:]) + "\n")
calls.close()


def local(service, arg):
    """A container path of `service` made the test's folder of that volume."""
    for target, volume in config["volumes"].get(service, {}).items():
        if arg == target or arg.startswith(target + "/"):
            return os.path.join(config["root"], volume) + arg[len(target):]
    if arg.startswith(("/mosquitto", "/opt/octopus", "/var/lib/postgresql")):
        sys.exit(f"stand-in: {arg} is no volume of the {service} service")
    return arg


args = sys.argv[1:]
if args[:1] != ["compose"] or len(args) < 2:
    sys.exit(f"stand-in: not a compose command: {args}")
command, rest = args[1], args[2:]
if command in ("stop", "start", "up", "restart"):
    unknown = [s for s in rest if not s.startswith("-") and s not in config["services"]]
    sys.exit(f"stand-in: unknown services {unknown}" if unknown else 0)
if command == "cp":
    source, destination = rest
    service, path = destination.split(":", 1)
    shutil.copyfile(source, local(service, path))
    sys.exit(0)
if command in ("exec", "run"):
    options = []
    while rest and rest[0].startswith("-"):
        options.append(rest.pop(0))
    required = {"exec": {"-T"}, "run": {"--rm", "--no-deps", "-T"}}[command]
    if not required <= set(options):
        sys.exit(f"stand-in: {command} needs {sorted(required)} here (input or output is a file)")
    service, argv = rest[0], rest[1:]
    if service not in config["services"]:
        sys.exit(f"stand-in: unknown service {service}")
    env = dict(config["environment"].get(service, {}), **config["container_env"])
    os.execvpe(argv[0], [local(service, a) for a in argv], env)
sys.exit(f"stand-in: unexpected {args}")
'''


def documented_blocks():
    """The backup and the restore command blocks of "With Docker Compose"."""
    text = OPERATIONS.read_text()
    backup = text.split("\n## Backup and restore\n", 1)[1].split("\n## ", 1)[0]
    section = backup.split("\n### With Docker Compose\n", 1)[1]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 2, "expected a backup block and a restore block"
    return blocks


@pytest.fixture
def stand_in(tmp_path, pg_cluster):
    """run(block, root, database): the block in bash, `docker` being the stand-in, the
    containers' volumes under `root`, the postgres container's database `database`."""
    compose = __import__("yaml").safe_load(COMPOSE_FILE.read_text())
    env = dummy_env()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(f"#!{sys.executable}\n{STAND_IN}")
    docker.chmod(0o755)
    passfile = tmp_path / "pgpass"
    app = pg_cluster.app_role
    passfile.write_text(f"{pg_cluster.bind}:{pg_cluster.port}:*:{postgres.SUPERUSER}:"
                        f"{pg_cluster.superuser_password}\n"
                        f"{pg_cluster.bind}:{pg_cluster.port}:*:{app['user']}:{app['password']}\n")
    passfile.chmod(0o600)
    environment = {name: {k: interpolate(str(v), env) for k, v in
                          (service.get("environment") or {}).items()}
                   for name, service in compose["services"].items()}
    assert environment["postgres"]["OCTOPUS_DB_USER"] == app["user"]

    def run(block, root, database):
        volumes = {name: {target: volume for volume, (target, _ro) in
                          named_volumes(service).items()}
                   for name, service in compose["services"].items()}
        for service_volumes in volumes.values():
            for volume in service_volumes.values():
                (root / volume).mkdir(parents=True, exist_ok=True)
        environment["postgres"]["OCTOPUS_DB_NAME"] = database
        config = {"root": str(root), "services": sorted(compose["services"]),
                  "volumes": volumes, "environment": environment,
                  # the image's tools, over TCP to the test's server instead of its socket
                  "container_env": {"PATH": f"{postgres.server_bindir()}:/usr/bin:/bin",
                                    "PGHOST": pg_cluster.bind, "PGPORT": str(pg_cluster.port),
                                    "PGPASSFILE": str(passfile)}}
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, capture_output=True,
            text=True, timeout=120,
            env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path),
                 "STAND_IN": json.dumps(config)})
        assert result.returncode == 0, f"{block}\n{result.stdout}\n{result.stderr}"
        return (root / "calls.log").read_text().splitlines()

    return run


def test_the_documented_compose_backup_and_restore_bring_every_row_back(
        stand_in, fresh_db, pg_cluster, tmp_path):
    backup_block, restore_block = documented_blocks()
    fill(fresh_db, pg_cluster.logins["nodered"])
    with psycopg.connect(**fresh_db, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} SET jit = off").format(
            sql.Identifier(fresh_db["dbname"])))
    source = psycopg.conninfo.make_conninfo(**fresh_db)
    original = snapshot(source)

    server = tmp_path / "server"
    (server / "mosquitto-data").mkdir(parents=True)
    accounts = b'{"clients": [{"username": "planta/sala/d1"}], "groups": [], "roles": []}\n'
    (server / "mosquitto-data" / "dynamic-security.json").write_bytes(accounts)
    ensure_certificates(server / "tls-certificates", ["mosquitto"])
    stand_in(backup_block, server, fresh_db["dbname"])
    assert (tmp_path / "backups" / "octopus.dump").stat().st_size > 0

    # a new server: empty volumes, then the restore into a database of another name
    new = tmp_path / "new-server"
    restored_name = fresh_db["dbname"] + "_restored"
    try:
        calls = stand_in(restore_block, new, restored_name)
        assert calls[0].startswith("compose stop ") and calls[-1] == "compose up -d"
        restored = psycopg.conninfo.make_conninfo(**dict(fresh_db, dbname=restored_name))
        assert snapshot(restored) == original
        with psycopg.connect(restored) as conn:  # the database's setting, not the owner's
            assert conn.execute(
                "SELECT setconfig FROM pg_db_role_setting WHERE setrole = 0 AND setdatabase ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())"
            ).fetchone() == (["jit=off"],)
        assert (new / "mosquitto-data" / "dynamic-security.json").read_bytes() == accounts
        for name in ("ca.crt", "ca.key", "server.crt", "server.key"):
            assert ((new / "tls-certificates" / name).read_bytes()
                    == (server / "tls-certificates" / name).read_bytes()), name
    finally:
        with psycopg.connect(pg_cluster.superuser_conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(restored_name)))


def test_the_stand_in_refuses_a_path_that_is_no_volume_of_the_service(stand_in, tmp_path):
    """The check above can fail: a command naming another service's volume is refused."""
    with pytest.raises(AssertionError, match="no volume of the webapp service"):
        stand_in("docker compose exec -T webapp cat /mosquitto/data/dynamic-security.json",
                 tmp_path / "server", "octopus")
