"""Acceptance 2: a reading published with paho-mqtt is stored, listed and streamed live; and
the flow's maintenance node rolls it up per minute (issue 4)."""
import json
import queue
import re
import uuid
from datetime import datetime, timedelta, timezone

import requests
import socketio

from tests.integration.conftest import wait_for


def cookie_header(session):
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def live_client(platform):
    """A Socket.IO client logged into the portal; returns (client, queue of `live` events)."""
    events = queue.Queue()
    client = socketio.Client(reconnection=False)
    client.on("live", events.put)
    client.connect(platform.portal_url, headers={"Cookie": cookie_header(platform.portal_session())},
                   wait_timeout=10)
    return client, events


def wait_for_reading(events, key, value, timeout=15):
    """The first live reading for `site/room/device/attribute` with this value."""
    def probe():
        try:
            batch = events.get(timeout=0.5)
        except queue.Empty:
            return None
        for reading in batch.get("readings", []):
            got = "/".join(reading[k] for k in ("site", "room", "device", "attribute"))
            if got == key and reading["value"] == value:
                return reading
        return None
    return wait_for(probe, timeout, interval=0, what=f"live reading {key} = {value}")


def test_published_reading_is_stored(platform):
    platform.publish([("oficina/servidores/servidor1/temperatura", "23.5")])
    rows = wait_for(lambda: platform.query(
        "SELECT m.num FROM measurements m JOIN attributes a ON a.id = m.attribute_id"
        " JOIN devices d ON d.id = a.device_id"
        " WHERE (d.site, d.room, d.name, a.name) = ('oficina', 'servidores', 'servidor1', 'temperatura')"
        " AND m.num = 23.5"), what="the reading in PostgreSQL")
    assert rows == [(23.5,)]


def test_new_device_appears_in_the_portal_tree(platform):
    device = f"servidor-{uuid.uuid4().hex[:6]}"
    session = platform.portal_session()
    assert device not in session.get(platform.portal_url + "/", timeout=10).text
    platform.publish([(f"oficina/servidores/{device}/temperatura",
                       '{"value": 23.5, "unit": "°C"}')])
    page = wait_for(lambda: (lambda r: r if device in r.text else None)(
        session.get(platform.portal_url + "/", timeout=10)), what="the device in the tree")
    assert f'data-key="oficina/servidores/{device}/temperatura"' in page.text
    assert "23.5" in page.text and "°C" in page.text


def test_logged_in_socketio_client_receives_the_value(platform):
    client, events = live_client(platform)
    try:
        platform.publish([("oficina/servidores/servidor1/temperatura", "23.5")])
        reading = wait_for_reading(events, "oficina/servidores/servidor1/temperatura", 23.5)
        assert reading["ts"]
    finally:
        client.disconnect()


def test_readings_are_rolled_up_per_minute_by_the_flow(platform):
    """The maintenance node of flows/octopus.json turns stored readings into per-minute rollups,
    per attribute and per room, with the device that had the max."""
    room = f"sala-{uuid.uuid4().hex[:6]}"
    minute = (datetime.now(timezone.utc) - timedelta(minutes=10)).replace(second=0, microsecond=0)
    readings = [("d1", 5, 20.0), ("d1", 40, 22.0), ("d2", 30, 30.5)]
    platform.publish([(f"planta/{room}/{device}/temperatura",
                       json.dumps({"value": value, "ts": (minute + timedelta(seconds=s)).isoformat()}))
                      for device, s, value in readings])
    rollup = wait_for(lambda: platform.query(
        "SELECT n, sum, min, max, (SELECT name FROM devices WHERE id = max_device_id)"
        "  FROM group_minute WHERE site = 'planta' AND room = %s AND attribute = 'temperatura'"
        "   AND minute = %s AND n = 3", (room, minute)), what="the room's rollup of that minute")
    assert rollup == [(3, 72.5, 20.0, 30.5, "d2")]
    per_attribute = platform.query(
        "SELECT d.name, r.n, r.sum FROM measurements_minute r JOIN attributes a ON a.id = r.attribute_id"
        "  JOIN devices d ON d.id = a.device_id WHERE d.room = %s AND r.minute = %s ORDER BY d.name",
        (room, minute))
    assert per_attribute == [("d1", 2, 42.0), ("d2", 1, 30.5)]


def test_reading_posted_over_http_takes_the_devices_path(platform):
    """An admin makes a write key on /keys; a reading POSTed with it to /api/v1/readings is
    published to the broker, stored by the Node-RED ingest and served by the history API. A
    malformed value is stored as a reject by the same ingest, as from a device."""
    session = platform.portal_session()
    page = session.get(platform.portal_url + "/keys", timeout=10).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    made = session.post(platform.portal_url + "/keys", timeout=10, data={
        "csrf_token": token, "name": "http-device", "scopes": ["read", "write"]})
    assert made.status_code == 201
    key = re.search(r'data-testid="new-key-value">([^<]+)<', made.text).group(1)

    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {key}"
    device = f"http-{uuid.uuid4().hex[:6]}"
    ts = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)
    answer = api.post(platform.portal_url + "/api/v1/readings", timeout=15, json={"readings": [
        {"topic": f"oficina/entrada/{device}/temperatura", "value": 21.5, "unit": "°C",
         "ts": ts.isoformat().replace("+00:00", "Z")},
        {"topic": f"oficina/entrada/{device}/puerta", "value": "open"},
        # a JSON string the API passes on, which is no state string of the topic contract
        {"topic": f"oficina/entrada/{device}/humedad", "value": "12% rel"},
    ]})
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"accepted": 3}

    topic = f"oficina/entrada/{device}/temperatura"
    history = wait_for(lambda: (lambda r: r if r.status_code == 200 and r.json()["points"] else None)(
        api.get(platform.portal_url + "/api/v1/history", timeout=10, params={
            "topic": topic, "from": (ts - timedelta(minutes=5)).isoformat(),
            "to": (ts + timedelta(minutes=5)).isoformat(), "resolution": "raw"})),
        what="the HTTP reading in the history API")
    assert history.json()["points"] == [{"ts": ts.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "value": 21.5}]
    assert history.json()["unit"] == "°C"
    state = wait_for(lambda: platform.query(
        "SELECT a.last_txt FROM attributes a JOIN devices d ON d.id = a.device_id"
        " WHERE d.name = %s AND a.name = 'puerta'", (device,)), what="the state reading")
    assert state == [("open",)]
    reject = wait_for(lambda: platform.query(
        "SELECT reason FROM rejects WHERE topic = %s", (f"oficina/entrada/{device}/humedad",)),
        what="the reject")
    assert len(reject) == 1 and "value" in reject[0][0]
