"""The postgres service's init script (postgres/docker-init/create-app-role.sh), run with
psql against a real server as the image runs it, without Docker: the owner, its database,
the group roles of migration 010 and Node-RED's and the dashboards' login roles; run again
(a volume older than the roles, a changed password) it completes and re-applies; the
migrations then run as the owner, and Node-RED's role logs in. And docker-compose.yaml
gives the script what it needs, and Node-RED its own role, never the owner's password."""
import os
import re
import shutil
import subprocess
import uuid

import psycopg
import pytest
import yaml
from psycopg import sql

from launcher import postgres
from octopus_portal.migrate import migrate
from tests.helpers import ROOT

SCRIPT = ROOT / "postgres/docker-init/create-app-role.sh"

needs_psql = pytest.mark.skipif(not shutil.which("psql"), reason="psql is not installed")


def test_compose_gives_the_script_its_variables_and_nodered_its_own_role():
    services = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())["services"]
    required = set(re.findall(r'^: "\$\{([A-Z_]+):\?', SCRIPT.read_text(), re.M))
    assert required and required <= set(services["postgres"]["environment"])
    nodered = services["nodered"]["environment"]
    assert nodered["PGUSER"].startswith("${NODERED_PGUSER:-")
    assert nodered["PGPASSWORD"].startswith("${NODERED_PGPASSWORD:?")
    owners_password = {name for name, service in services.items()
                       if "${PGPASSWORD:" in str(service.get("environment"))}
    assert owners_password == {"postgres", "webapp"}


@pytest.fixture
def names(pg_cluster):
    """Names of the test's own, and the roles and database dropped afterwards."""
    tag = uuid.uuid4().hex[:8]
    made = dict(db=f"init_{tag}", owner=f"init_owner_{tag}", nodered=f"init_nodered_{tag}",
                grafana=f"init_grafana_{tag}")
    yield made
    with psycopg.connect(pg_cluster.superuser_conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                     .format(sql.Identifier(made["db"])))
        for role in ("nodered", "grafana", "owner"):
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(made[role])))


def run_script(pg_cluster, names, timeout=None, **passwords):
    """The script as the image runs it: psql as the superuser; names and passwords in the
    environment under the names docker-compose.yaml gives them; GRAFANA_PG_STATEMENT_TIMEOUT
    if `timeout` is given (else unset, as with an .env older than it)."""
    env = {"PATH": os.environ["PATH"], "PGHOST": pg_cluster.bind, "PGPORT": str(pg_cluster.port),
           "PGPASSWORD": pg_cluster.superuser_password, "POSTGRES_USER": postgres.SUPERUSER,
           "OCTOPUS_DB_NAME": names["db"], "OCTOPUS_DB_USER": names["owner"],
           "OCTOPUS_DB_PASSWORD": passwords.get("owner", "owner-pw"),
           "NODERED_PGUSER": names["nodered"],
           "NODERED_PGPASSWORD": passwords.get("nodered", "nodered-pw"),
           "GRAFANA_PGUSER": names["grafana"],
           "GRAFANA_PGPASSWORD": passwords.get("grafana", "grafana-pw")}
    if timeout is not None:
        env["GRAFANA_PG_STATEMENT_TIMEOUT"] = timeout
    return subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=60)


def login(pg_cluster, user, password, dbname):
    return psycopg.connect(host=pg_cluster.bind, port=pg_cluster.port, user=user,
                           password=password, dbname=dbname, autocommit=True)


@needs_psql
def test_init_script_makes_every_role_and_can_run_again(pg_cluster, names):
    first = run_script(pg_cluster, names)
    assert first.returncode == 0, first.stderr
    # a volume made before these roles: the script is run again by hand; a password changed
    again = run_script(pg_cluster, names, nodered="new-nodered-pw")
    assert again.returncode == 0, again.stderr

    owner_conninfo = psycopg.conninfo.make_conninfo(
        host=pg_cluster.bind, port=pg_cluster.port, user=names["owner"], password="owner-pw",
        dbname=names["db"])
    migrate(owner_conninfo, log=lambda m: None)  # 010 finds its group roles
    with login(pg_cluster, names["nodered"], "new-nodered-pw", names["db"]) as conn:
        assert conn.execute("SELECT pg_has_role(current_user, %s, 'USAGE')",
                            (postgres.FLOWS_GROUP,)).fetchone()[0]
        assert conn.execute("SELECT ingest_claim_clock_slot('w1')").fetchone()[0] == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM users")
    with login(pg_cluster, names["grafana"], "grafana-pw", names["db"]) as conn:
        assert conn.execute("SELECT pg_has_role(current_user, %s, 'USAGE')",
                            (postgres.READER_GROUP,)).fetchone()[0]
        conn.execute("SELECT count(*) FROM measurements")
        assert conn.execute("SHOW statement_timeout").fetchone() == ("30s",), "the default"
    limited = run_script(pg_cluster, names, timeout="200ms", nodered="new-nodered-pw")
    assert limited.returncode == 0, limited.stderr
    with login(pg_cluster, names["grafana"], "grafana-pw", names["db"]) as conn:
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
            conn.execute("SELECT pg_sleep(2)")
    assert run_script(pg_cluster, names, timeout="0", nodered="new-nodered-pw").returncode == 0
    with login(pg_cluster, names["grafana"], "grafana-pw", names["db"]) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("0",), "0: none"
    assert run_script(pg_cluster, names, timeout="", nodered="new-nodered-pw").returncode == 0
    with login(pg_cluster, names["grafana"], "grafana-pw", names["db"]) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("30s",), "empty: default"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        login(pg_cluster, names["nodered"], "nodered-pw", names["db"])
    with psycopg.connect(pg_cluster.superuser_conninfo(), autocommit=True) as conn:
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                             (names["db"],)).fetchone()[0]
    assert owner == names["owner"]


@needs_psql
@pytest.mark.parametrize("clash", ["owner", "postgres", "octopus_flows", "grafana"])
def test_init_script_refuses_a_login_role_named_like_another(pg_cluster, names, clash):
    clashing = dict(names, nodered={"owner": names["owner"], "grafana": names["grafana"]}.get(
        clash, clash))
    result = run_script(pg_cluster, clashing)
    assert result.returncode != 0
    assert "must differ" in result.stderr
    with psycopg.connect(pg_cluster.superuser_conninfo(), autocommit=True) as conn:
        assert not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                (names["db"],)).fetchone(), "nothing is made"
