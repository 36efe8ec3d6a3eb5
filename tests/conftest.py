"""Fixtures shared by every test: a real throwaway PostgreSQL and a real Mosquitto."""
import contextlib
import secrets
import shutil
import uuid

import psycopg
import pytest
from psycopg import sql

import paho.mqtt.client as mqtt

from launcher import mosquitto, postgres
from launcher.processes import Supervisor
from launcher.stack import isolated_config, port_open
from octopus_portal.migrate import migrate

from tests.helpers import (ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT,  # noqa: F401 (re-exported)
                           free_port, make_state_dir)


@pytest.fixture(scope="session")
def artifacts_dir():
    """Where tests leave files for people to look at (screenshots); kept after the run."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium (Debian's) for the page tests of one module."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser):
    """new_page(**options): a page of `browser`, closed after the test, before the fixtures
    it was set up after (a server shutting down would otherwise wait for its open socket)."""
    pages = []

    def make(**options):
        pages.append(browser.new_page(**options))
        return pages[-1]

    yield make
    for page in pages:
        page.close()


@pytest.fixture(scope="session")
def pg_cluster():
    """A real PostgreSQL server of its own for the test session, with the `octopus` role, and
    Node-RED's and the dashboards' roles as the launcher makes them (`cluster.logins`:
    libpq keyword parameters of each, without dbname)."""
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
    cluster.logins = {
        "nodered": dict(host=cluster.bind, port=cluster.port, user="octopus_nodered",
                        password=secrets.token_urlsafe(16)),
        "grafana": dict(host=cluster.bind, port=cluster.port, user="octopus_grafana",
                        password=secrets.token_urlsafe(16)),
    }
    postgres.ensure_platform_roles(cluster.superuser_conninfo(), {
        cluster.logins["nodered"]["user"]: (cluster.logins["nodered"]["password"],
                                            postgres.FLOWS_GROUP),
        cluster.logins["grafana"]["user"]: (cluster.logins["grafana"]["password"],
                                            postgres.READER_GROUP)})
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


class Broker:
    """Mosquitto started the way the launcher starts it: the repository's mosquitto.conf and
    ACL, the platform's three accounts with random passwords, on free ports; `settings`
    override the configuration (e.g. MQTT_TLS_REQUIRE_CLIENT_CERT="true"). The platform CA
    and the broker's certificate are generated in `state_dir`/tls."""

    def __init__(self, state_dir, **settings):
        self.config = {**isolated_config(), **settings}
        self.host, self.port = "127.0.0.1", int(self.config["MQTT_PORT"])
        self.tls_port, self.wss_port = (int(self.config["MQTT_TLS_PORT"]),
                                        int(self.config["MQTT_WSS_PORT"]))
        self.tls_dir = state_dir / "tls"
        self.accounts = {self.config[f"MQTT_{kind}_USER"]: self.config[f"MQTT_{kind}_PASSWORD"]
                         for kind in ("NODERED", "PORTAL", "SIMULATOR")}
        self.supervisor = Supervisor(state_dir / "log")
        self.conf = mosquitto.prepare(state_dir / "mosquitto", self.config, self.tls_dir)

    def user(self, kind):
        """(user, password) of the platform account NODERED, PORTAL or SIMULATOR."""
        return self.config[f"MQTT_{kind}_USER"], self.config[f"MQTT_{kind}_PASSWORD"]

    def start(self):
        self.supervisor.start("mosquitto", mosquitto.command(self.conf))
        self.supervisor.wait_ready("mosquitto", lambda: all(
            port_open(self.host, port) for port in (self.port, self.tls_port, self.wss_port)), 10)

    def stop(self):
        self.supervisor.stop("mosquitto")

    def log(self):
        return self.supervisor.log_path("mosquitto").read_text(errors="replace")

    def publish(self, topic, payload, kind="SIMULATOR"):
        """Publish one message at QoS 1 and wait until the broker has it."""
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=f"test-{uuid.uuid4().hex[:8]}")
        client.username_pw_set(*self.user(kind))
        client.connect(self.host, self.port)
        client.loop_start()
        try:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
        finally:
            client.disconnect()
            client.loop_stop()


@contextlib.contextmanager
def running_broker(prefix="octopus-mqtt-", **settings):
    """A started Broker with `settings`; stopped and its folder removed afterwards, also when
    it fails to start."""
    state = make_state_dir(prefix)
    try:
        broker = Broker(state, **settings)
        broker.start()
        yield broker
    finally:
        if "broker" in locals():
            broker.supervisor.stop_all()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def mqtt_broker():
    """A running Mosquitto of the test's own (see Broker)."""
    with running_broker() as broker:
        yield broker
