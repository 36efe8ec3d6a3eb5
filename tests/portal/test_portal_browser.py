"""The live view in a real headless Chromium against the portal under gunicorn, as deployed:
values change, new devices appear and status badges follow octopus/live messages."""
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from tests.helpers import free_port

from .helpers import ADMIN_PASSWORD, ADMIN_USER, ingest

WEBAPP = Path(__file__).resolve().parents[2] / "webapp"


@pytest.fixture
def portal_url(fresh_db, mqtt_broker, tmp_path):
    """The portal started the way the launcher starts it (gunicorn, gthread), on a free port."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(WEBAPP), PORTAL_SECRET_KEY="browser-test-secret",
               PGHOST=fresh_db["host"], PGPORT=str(fresh_db["port"]),
               PGDATABASE=fresh_db["dbname"], PGUSER=fresh_db["user"],
               PGPASSWORD=fresh_db["password"], MQTT_HOST="127.0.0.1",
               MQTT_PORT=str(mqtt_broker.port), MQTT_PORTAL_USER=mqtt_broker.user("PORTAL")[0],
               MQTT_PORTAL_PASSWORD=mqtt_broker.user("PORTAL")[1],
               PORTAL_ADMIN_USER=ADMIN_USER, PORTAL_ADMIN_PASSWORD=ADMIN_PASSWORD)
    log = open(tmp_path / "portal.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "20",
         "--bind", f"127.0.0.1:{port}", "octopus_portal:create_app()"],
        cwd=WEBAPP, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "portal.log").read_text()
            try:
                if requests.get(url + "/login", timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or still importing on a busy machine
            assert time.monotonic() < deadline, "portal not ready in 30 s"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def reading(device, attribute, ts, value, unit=None, site="oficina", room="servidores"):
    return {"site": site, "room": room, "device": device, "attribute": attribute,
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "value": value, "unit": unit}


@pytest.mark.browser
def test_live_view_updates_the_tree(portal_url, mqtt_broker, db, artifacts_dir, new_page):
    t0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    ingest(db, readings=[("oficina", "servidores", "servidor1", "temperatura", t0, 20.0, None, "°C")],
           statuses=[("oficina", "servidores", "servidor1", "online", t0)])
    page = new_page(viewport={"width": 1280, "height": 900}, timezone_id="Asia/Tokyo",
                            locale="en-GB")
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    page.goto(portal_url + "/")
    page.fill("input[name=username]", ADMIN_USER)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_test_id("live-state")).to_have_text("live", timeout=10_000)

    temperature = page.locator('[data-key="oficina/servidores/servidor1/temperatura"]')
    expect(temperature.locator(".value")).to_have_text("20")
    expect(temperature.locator(".unit")).to_have_text("°C")
    # shown in the browser's zone (Tokyo, UTC+9), not as the UTC string of the page
    local = (t0 + timedelta(hours=9)).strftime("%H:%M")
    assert local in temperature.locator("time").text_content()

    mqtt_broker.publish("octopus/live", b"not json", kind="NODERED")  # dropped by the portal
    t1 = t0 + timedelta(minutes=1)
    mqtt_broker.publish("octopus/live", json.dumps({
        "readings": [reading("servidor1", "temperatura", t1, 21.5, "°C"),
                     reading("servidor1", "humedad", t1, 40, "%"),
                     reading("prensa", "estado", t1, "tripped", site="fabrica", room="linea1")],
        "statuses": [{"site": "oficina", "room": "servidores", "device": "servidor1",
                      "status": "offline", "ts": t1.isoformat()}],
        "rejects": 2}), kind="NODERED")
    expect(temperature.locator(".value")).to_have_text("21.5")
    expect(page.locator('[data-key="oficina/servidores/servidor1/humedad"] .value')).to_have_text("40")
    new_device = page.locator('[data-key="fabrica/linea1/prensa"]')
    expect(new_device).to_be_visible()
    expect(new_device.locator('[data-key="fabrica/linea1/prensa/estado"] .value')).to_have_text("tripped")
    expect(page.locator('[data-key="oficina/servidores/servidor1"] [data-testid=status]')).to_have_text("offline")
    expect(page.get_by_test_id("live-rejects-count")).to_have_text("2")
    # sites stay in name order: the new one comes first
    assert page.get_by_test_id("site").evaluate_all("els => els.map(e => e.dataset.key)") == \
        ["fabrica", "oficina"]

    # an older reading arriving late does not replace the newer value
    mqtt_broker.publish("octopus/live", json.dumps({
        "readings": [reading("servidor1", "temperatura", t0, 19.0, "°C"),
                     reading("servidor1", "co2", t1, 600, "ppm")]}), kind="NODERED")
    expect(page.locator('[data-key="oficina/servidores/servidor1/co2"] .value')).to_have_text("600")
    expect(temperature.locator(".value")).to_have_text("21.5")

    page.screenshot(path=str(artifacts_dir / "portal-devices-live.png"), full_page=True)
    assert errors == []
