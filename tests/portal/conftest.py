"""Portal fixtures: an app on a fresh real database, its clients, and a real Mosquitto."""
import getpass
import secrets
import shutil
import socket
import subprocess
import time

import paho.mqtt.client as mqtt
import pytest

from octopus_portal import create_app, shutdown
from tests.helpers import free_port, make_state_dir

from .helpers import ADMIN_PASSWORD, ADMIN_USER, login


def portal_config(db, **overrides):
    """A test config for create_app(): the given database, no MQTT unless asked."""
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "PGHOST": db["host"], "PGPORT": db["port"], "PGDATABASE": db["dbname"],
        "PGUSER": db["user"], "PGPASSWORD": db["password"],
        "PORTAL_ADMIN_USER": ADMIN_USER, "PORTAL_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "LIVE_ENABLED": False,
    }
    config.update(overrides)
    return config


@pytest.fixture
def make_app(fresh_db):
    """Build apps on the test's database (shut down afterwards): make_app(**config_overrides)."""
    apps = []

    def make(**overrides):
        app = create_app(portal_config(fresh_db, **overrides))
        apps.append(app)
        return app

    yield make
    for app in apps:
        shutdown(app)


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def logged_in(client):
    """The test client, logged in as the first admin."""
    response = login(client)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def db(fresh_db):
    """A direct connection to the test's database, to insert data and check what was stored."""
    import psycopg
    from psycopg.rows import dict_row
    with psycopg.connect(**fresh_db, autocommit=True, row_factory=dict_row) as conn:
        yield conn


class Broker:
    """A real Mosquitto on 127.0.0.1:`port`: password file, no anonymous clients."""

    def __init__(self, state_dir, port, accounts):
        self.state_dir, self.port, self.accounts = state_dir, port, accounts
        self.proc = None
        passwd = state_dir / "passwd"
        passwd.touch(mode=0o600)
        passwd.write_text("".join(f"{u}:{p}\n" for u, p in accounts.items()))
        subprocess.run(["mosquitto_passwd", "-U", str(passwd)], check=True)
        self.conf = state_dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {port} 127.0.0.1\n"
            "allow_anonymous false\n"
            f"password_file {passwd}\n"
            "persistence false\n"
            # Started as root it would switch to the `mosquitto` user, which cannot read
            # this folder's password file: stay who we are.
            f"user {getpass.getuser()}\n")

    def start(self):
        log = open(self.state_dir / "mosquitto.log", "ab")
        self.proc = subprocess.Popen(
            [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(self.conf)],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.state_dir / "mosquitto.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not open its port within 10 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def publish(self, topic, payload, user="publisher"):
        """Publish one message at QoS 1 and wait until the broker has it."""
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{secrets.token_hex(4)}")
        client.username_pw_set(user, self.accounts[user])
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        try:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
        finally:
            client.disconnect()
            client.loop_stop()


@pytest.fixture
def mqtt_broker():
    """A running broker with the accounts `portal` and `publisher` (random passwords)."""
    state = make_state_dir("octopus-portal-mqtt-")
    broker = Broker(state, free_port(), {"portal": secrets.token_urlsafe(12),
                                         "publisher": secrets.token_urlsafe(12)})
    broker.start()
    yield broker
    broker.stop()
    shutil.rmtree(state, ignore_errors=True)
