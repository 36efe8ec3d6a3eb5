"""The whole platform, really started once for the integration tests: Mosquitto, PostgreSQL,
Node-RED with the project's own flows, the portal and the demo simulators, through the same
launcher code as `./octopus up`, on free ports and in a temporary state folder."""
import re
import shutil
import time
import uuid

import paho.mqtt.client as mqtt
import psycopg
import pytest
import requests

from launcher.stack import Stack, free_port, isolated_config
from tests.helpers import ROOT, make_state_dir


def wait_for(probe, timeout=20.0, interval=0.2, what="condition"):
    """Poll `probe()` until it returns something truthy, and return that; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


class Platform:
    def __init__(self, stack, config, state_dir):
        self.stack = stack
        self.config = config
        self.state_dir = state_dir
        self.host = stack.host
        self.portal_url = f"http://{self.host}:{config['PORTAL_PORT']}"
        self.nodered_url = f"http://{self.host}:{config['NODERED_PORT']}"

    # -- MQTT ------------------------------------------------------------------------------
    def mqtt_client(self, account="SIMULATOR", client_id=None, **kwargs):
        """A connected paho client with one of the platform's accounts (loop running)."""
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=client_id or f"test-{uuid.uuid4().hex[:8]}", **kwargs)
        client.username_pw_set(self.config[f"MQTT_{account}_USER"],
                               self.config[f"MQTT_{account}_PASSWORD"])
        client.connect(self.host, int(self.config["MQTT_PORT"]))
        client.loop_start()
        wait_for(client.is_connected, 10, what="MQTT connection")
        return client

    def publish(self, messages, qos=1):
        """Publish (topic, payload) pairs with QoS 1 and wait until the broker has them all."""
        client = self.mqtt_client()
        try:
            infos = [client.publish(topic, payload, qos=qos) for topic, payload in messages]
            for info in infos:
                info.wait_for_publish(10)
        finally:
            client.disconnect()
            client.loop_stop()

    # -- PostgreSQL ------------------------------------------------------------------------
    def db(self):
        return psycopg.connect(host=self.config["PGHOST"], port=self.config["PGPORT"],
                               dbname=self.config["PGDATABASE"], user=self.config["PGUSER"],
                               password=self.config["PGPASSWORD"], autocommit=True)

    def query(self, sql, params=()):
        with self.db() as conn:
            return conn.execute(sql, params).fetchall()

    # -- the portal and Node-RED -----------------------------------------------------------
    def portal_session(self):
        """A requests session logged into the portal as the generated admin."""
        session = requests.Session()
        page = session.get(f"{self.portal_url}/login", timeout=10)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
        form = {"username": self.config["PORTAL_ADMIN_USER"],
                "password": self.config["PORTAL_ADMIN_PASSWORD"]}
        if token:
            form["csrf_token"] = token.group(1)
        response = session.post(f"{self.portal_url}/login", data=form, timeout=10)
        assert response.ok and "/login" not in response.url, "portal login failed"
        return session

    def nodered_token(self):
        """An access token for Node-RED's admin API, as the editor's login obtains it."""
        response = requests.post(f"{self.nodered_url}/auth/token", timeout=10, data={
            "client_id": "node-red-admin", "grant_type": "password", "scope": "*",
            "username": self.config["NODERED_ADMIN_USER"],
            "password": self.config["NODERED_ADMIN_PASSWORD"]})
        response.raise_for_status()
        return response.json()["access_token"]


def platform_config(state_dir):
    """A configuration as `./octopus up` writes on first run, with free ports and test knobs."""
    config = isolated_config()
    flows_dir = state_dir / "flows"
    shutil.copytree(ROOT / "flows", flows_dir)
    config.update(
        # A copy, so that what the tests deploy does not rewrite the repository's flows.
        NODERED_FLOWS_FILE=str(flows_dir / "octopus.json"),
        SIM_DEVICES="3", SIM_INTERVAL_S="1", SIM_BAD_DATA_PROBABILITY="0.05",
        INGEST_LINGER_MS="20",
        # rollups of finished minutes every second, so the tests need not wait 10 s
        MAINTENANCE_INTERVAL_S="1",
        # Modbus: one demo recloser; device list and figures every second, short backoff,
        # so that the tests see changes within a few seconds
        MODBUS_SIM_DEVICES="1", MODBUS_REFRESH_S="1", MODBUS_STATS_INTERVAL_S="1",
        MODBUS_BACKOFF_MAX_S="2",
        # alerts: rules re-read every second; a short notification interval and flap window
        # so that the rate limit shows within a test; the tests' own SMTP server
        ALERTS_REFRESH_S="1", ALERT_NOTIFY_MIN_INTERVAL_S="5", ALERT_FLAP_COUNT="4",
        ALERT_FLAP_WINDOW_S="60", SMTP_HOST="127.0.0.1", SMTP_PORT=str(free_port()),
        # one more name for the broker's TLS certificate (test_mqtt_tls.py checks it)
        MQTT_TLS_HOSTNAMES="mqtt.octopus.test",
    )
    return config


@pytest.fixture(scope="session")
def platform():
    state_dir = make_state_dir("octopus-it-")
    config = platform_config(state_dir)
    stack = Stack(config, state_dir=state_dir)
    stack.start(simulators=True)
    try:
        yield Platform(stack, config, state_dir)
    finally:
        stack.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
