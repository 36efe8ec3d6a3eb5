"""/healthz (issue 8): public, 200 when the broker connection, the database and Node-RED
answer, 503 naming what is down; it says "ok" or "down" and nothing more."""
import http.server
import logging
import threading
import time

import pytest
from psycopg_pool import ConnectionPool

from octopus_portal import health, live
from octopus_portal.db import POOL

from tests.helpers import free_port


class FakeNodeRed:
    """An HTTP server answering GET /settings with `status` (Node-RED asks for its login: 401)."""

    def __init__(self, status=401):
        self.status = status
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(outer.status if self.path == "/settings" else 404)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def nodered():
    fake = FakeNodeRed()
    yield fake
    fake.close()


@pytest.fixture
def healthy_app(make_app, mqtt_broker, nodered):
    """An app whose broker (a real Mosquitto), database and Node-RED (a fake) all answer."""
    app = make_app(
        LIVE_ENABLED=True, MQTT_HOST="127.0.0.1", MQTT_PORT=mqtt_broker.port,
        MQTT_PORTAL_USER=mqtt_broker.user("PORTAL")[0],
        MQTT_PORTAL_PASSWORD=mqtt_broker.user("PORTAL")[1], NODERED_URL=nodered.url)
    assert app.extensions[live.EXTENSION].subscribed.wait(10)
    return app


def check_again(app):
    """Make the cached result stale: the next call checks again."""
    app.extensions[health.EXTENSION]["at"] = None


def wait_until(probe, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_healthy_platform_answers_200_to_anyone(healthy_app):
    response = healthy_app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "components": {
        "broker": "ok", "database": "ok", "nodered": "ok"}}
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("nodered_status", [200, 401])
def test_nodered_is_up_when_its_api_answers_or_asks_for_its_login(healthy_app, nodered,
                                                                   nodered_status):
    nodered.status = nodered_status
    assert healthy_app.test_client().get("/healthz").status_code == 200


def test_each_component_down_is_named_and_only_named(healthy_app, nodered, mqtt_broker, caplog):
    client = healthy_app.test_client()
    nodered.status = 500
    with caplog.at_level(logging.WARNING, logger="octopus_portal.health"):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unhealthy", "down": ["nodered"], "components": {
        "broker": "ok", "database": "ok", "nodered": "down"}}
    assert "nodered is down: Node-RED answered HTTP 500" in caplog.text  # the why: in the log

    mqtt_broker.stop()
    bridge = healthy_app.extensions[live.EXTENSION]
    wait_until(lambda: not bridge.client.is_connected())
    check_again(healthy_app)
    body = client.get("/healthz").get_json()
    assert body["down"] == ["broker", "nodered"]
    assert set(body) == {"status", "down", "components"}
    assert set(body["components"].values()) == {"ok", "down"}


def test_database_down_is_503_naming_the_database_and_healthy_again_after(healthy_app, caplog):
    client = healthy_app.test_client()
    real_pool = healthy_app.extensions[POOL]
    # a pool towards a port where no PostgreSQL listens: as if the server had stopped
    dead = ConnectionPool(f"host=127.0.0.1 port={free_port()} connect_timeout=1", open=False)
    dead.open(wait=False)
    healthy_app.extensions[POOL] = dead
    try:
        with caplog.at_level(logging.INFO, logger="octopus_portal.health"):
            response = client.get("/healthz")
            assert response.status_code == 503
            assert response.get_json()["down"] == ["database"]
            healthy_app.extensions[POOL] = real_pool
            check_again(healthy_app)
            assert client.get("/healthz").status_code == 200
    finally:
        healthy_app.extensions[POOL] = real_pool
        dead.close()
    assert "database is down: no answer from PostgreSQL (PoolTimeout)" in caplog.text
    assert "database is up again" in caplog.text


def test_probes_within_a_second_share_one_round_of_checks(make_app, monkeypatch):
    app = make_app(NODERED_URL="http://127.0.0.1:9")
    calls = []
    monkeypatch.setitem(health.CHECKS, "database",
                        lambda app: calls.append(1) or health.check_database(app))
    client = app.test_client()
    for _ in range(20):
        assert client.get("/healthz").status_code == 503  # no broker, no Node-RED here
    assert len(calls) == 1
    check_again(app)
    client.get("/healthz")
    assert len(calls) == 2
