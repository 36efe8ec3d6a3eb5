"""The platform as started: Node-RED works on its own database role (NODERED_PGUSER, a member
of octopus_flows), not the owner's, and the owner's password is not in its environment. That
ingest, Modbus and alerts still work on that role, the other integration tests show."""
from pathlib import Path

import psycopg

from tests.integration.conftest import wait_for


def nodered_sessions(platform):
    return platform.query("SELECT DISTINCT usename FROM pg_stat_activity"
                          " WHERE application_name = 'octopus-nodered'")


def test_nodered_connects_as_its_own_role(platform):
    wait_for(lambda: platform.query("SELECT 1 FROM measurements LIMIT 1"), 60,
             what="the simulators' readings stored by Node-RED")
    users = wait_for(lambda: nodered_sessions(platform), 30, what="Node-RED's database sessions")
    assert users == [(platform.config["NODERED_PGUSER"],)]
    assert platform.config["NODERED_PGUSER"] != platform.config["PGUSER"]
    member, = platform.query("SELECT pg_has_role(%s, 'octopus_flows', 'USAGE')",
                             (platform.config["NODERED_PGUSER"],))
    assert member == (True,)


def test_nodered_process_has_no_owner_or_superuser_password(platform):
    pid = platform.stack.supervisor.pid("nodered")
    environ = dict(entry.split("=", 1) for entry in
                   Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in entry)
    assert environ["PGUSER"] == platform.config["NODERED_PGUSER"]
    for secret in ("PGPASSWORD", "PG_SUPERUSER_PASSWORD", "GRAFANA_PGPASSWORD",
                   "PORTAL_SECRET_KEY"):
        assert platform.config[secret] not in environ.values(), secret


def test_dashboards_queries_stop_at_the_configured_timeout(platform):
    """A Grafana panel over months of raw readings would take a core from the ingest for as
    long as it runs: the dashboards' role stops each statement at
    GRAFANA_PG_STATEMENT_TIMEOUT (30s), as the launcher set it."""
    c = platform.config
    assert c["GRAFANA_PG_STATEMENT_TIMEOUT"] == "30s"
    with psycopg.connect(host=c["PGHOST"], port=c["PGPORT"], dbname=c["PGDATABASE"],
                         user=c["GRAFANA_PGUSER"], password=c["GRAFANA_PGPASSWORD"]) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("30s",)
    owner, = platform.query("SHOW statement_timeout")
    assert owner == ("0",), "the portal's exports are not limited"
