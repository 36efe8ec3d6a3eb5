"""Fixtures shared by every test: free ports, state folders, a real throwaway PostgreSQL."""
import secrets
import shutil
import uuid

import psycopg
import pytest
from psycopg import sql

from launcher import postgres
from launcher.processes import Supervisor
from octopus_portal.migrate import migrate

from tests.helpers import ARTIFACTS, ROOT, free_port, make_state_dir  # noqa: F401 (re-exported)


@pytest.fixture(scope="session")
def artifacts_dir():
    """Where tests leave files for people to look at (screenshots); kept after the run."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def pg_cluster():
    """A real PostgreSQL server of its own for the test session, with the `octopus` role."""
    state = make_state_dir("octopus-pg-")
    cluster = postgres.LocalCluster(state / "data", free_port(), "127.0.0.1",
                                    secrets.token_urlsafe(16))
    sup = Supervisor(state / "log")
    cluster.prepare(sup.run)
    sup.start("postgres", cluster.server_command(), **postgres.run_as())
    sup.wait_ready("postgres", lambda: psycopg.connect(cluster.superuser_conninfo()).close() or True)
    password = secrets.token_urlsafe(16)
    postgres.ensure_role_and_database(cluster.superuser_conninfo(), "octopus", password,
                                      "octopus_template")
    template = dict(host=cluster.bind, port=cluster.port, user="octopus", password=password,
                    dbname="octopus_template")
    migrate(psycopg.conninfo.make_conninfo(**template), log=lambda m: None)
    cluster.app_role = template
    yield cluster
    sup.stop_all()
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def fresh_db(pg_cluster):
    """A new database with every migration applied, owned by `octopus`; dropped afterwards.

    Returns libpq keyword parameters: host, port, user, password, dbname.
    """
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_cluster.superuser_conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE octopus_template OWNER octopus")
                     .format(sql.Identifier(name)))
    yield dict(pg_cluster.app_role, dbname=name)
    with psycopg.connect(pg_cluster.superuser_conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
