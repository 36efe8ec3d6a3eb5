"""GET /api/v1: devices, attributes, latest, history, aggregates, and the 4xx for bad input."""
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from octopus_portal.keys import create_key

from .helpers import ingest

UTC = timezone.utc
# Just before midnight UTC, so readings span minute and day boundaries.
T0 = datetime(2026, 11, 22, 23, 58, 30, tzinfo=UTC)
TEMP = "oficina/servidores/servidor1/temperatura"


def readings():
    """Three devices' temperatures every 20 s over 4 minutes, a state and a boolean."""
    rows = []
    for i in range(12):
        ts = T0 + timedelta(seconds=20 * i, microseconds=1500 if i == 3 else 0)
        rows.append(("oficina", "servidores", "servidor1", "temperatura", ts, 20.0 + i, None, "°C"))
        rows.append(("oficina", "servidores", "servidor2", "temperatura", ts, 30.0 - 2 * i, None, "°C"))
        rows.append(("oficina", "sala", "sensor1", "temperatura", ts, 25.0 + (i % 3), None, "°C"))
    rows.append(("oficina", "sala", "sensor1", "porta", T0, None, "open", None))
    rows.append(("fabrica", "linha1", "prensa", "ligado", T0, 1.0, "true", None))
    return rows


@pytest.fixture
def api(client, db):
    """(client, headers of a read key) over the readings above, rolled up."""
    ingest(db, readings=readings(),
           statuses=[("oficina", "servidores", "servidor1", "online", T0)])
    db.execute("SELECT run_maintenance(0, 0)")
    _, secret = create_key(db, "reader", ["read"], None, None)
    return client, {"Authorization": f"Bearer {secret}"}


def get(api, path, status=200, **params):
    client, headers = api
    response = client.get(path, headers=headers, query_string=params)
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def iso(ts):
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_devices_with_status_and_last_values(api):
    devices = get(api, "/api/v1/devices")["devices"]
    assert [d["topic"] for d in devices] == [
        "fabrica/linha1/prensa", "oficina/sala/sensor1", "oficina/servidores/servidor1",
        "oficina/servidores/servidor2"]
    server = devices[2]
    assert (server["site"], server["room"], server["name"]) == ("oficina", "servidores", "servidor1")
    assert (server["status"], server["status_at"]) == ("online", "2026-11-22T23:58:30.000Z")
    assert server["first_seen"].endswith("Z") and server["last_seen"].endswith("Z")
    assert server["attributes"] == [{"name": "temperatura", "topic": TEMP, "unit": "°C",
                                     "last_ts": iso(T0 + timedelta(seconds=220)),
                                     "last_value": 31.0}]
    assert devices[0]["status"] is None
    assert devices[0]["attributes"][0]["last_value"] == "true"


def test_attributes_by_pattern(api):
    body = get(api, "/api/v1/attributes", pattern="oficina/sala/#")
    assert body == {"attributes": [
        {"topic": "oficina/sala/sensor1/porta", "site": "oficina", "room": "sala",
         "device": "sensor1", "attribute": "porta", "unit": None},
        {"topic": "oficina/sala/sensor1/temperatura", "site": "oficina", "room": "sala",
         "device": "sensor1", "attribute": "temperatura", "unit": "°C"}]}
    assert len(get(api, "/api/v1/attributes")["attributes"]) == 5
    assert get(api, "/api/v1/attributes", pattern="nowhere/#") == {"attributes": []}


def test_latest_values(api):
    body = get(api, "/api/v1/latest", pattern="+/+/+/temperatura")
    assert [(r["topic"], r["value"]) for r in body["readings"]] == [
        ("oficina/sala/sensor1/temperatura", 27.0),
        ("oficina/servidores/servidor1/temperatura", 31.0),
        ("oficina/servidores/servidor2/temperatura", 8.0)]
    state = get(api, "/api/v1/latest", pattern="oficina/sala/sensor1/porta")["readings"]
    assert state == [{"topic": "oficina/sala/sensor1/porta", "ts": iso(T0), "value": "open",
                      "unit": None}]


def test_raw_history_is_every_reading(api):
    body = get(api, "/api/v1/history", topic=TEMP, **{"from": "2026-11-22T23:00:00Z",
                                                       "to": "2026-11-23T00:10:00+00:00"})
    assert (body["topic"], body["unit"], body["resolution"]) == (TEMP, "°C", "raw")
    assert (body["from"], body["to"]) == ("2026-11-22T23:00:00.000Z", "2026-11-23T00:10:00.000Z")
    expected = [{"ts": iso(r[4]) if r[4].microsecond % 1000 == 0 else
                 r[4].isoformat(timespec="microseconds").replace("+00:00", "Z"), "value": r[5]}
                for r in readings() if r[2] == "servidor1"]
    assert body["points"] == expected
    assert "2026-11-22T23:59:30.001500Z" in [p["ts"] for p in body["points"]]


def test_minute_history_matches_the_raw_readings(api):
    body = get(api, "/api/v1/history", topic=TEMP, resolution="minute",
               **{"from": "2026-11-22T23:00:00Z", "to": "2026-11-23T01:00:00Z"})
    buckets = defaultdict(list)
    for r in readings():
        if r[2] == "servidor1":
            buckets[r[4].replace(second=0, microsecond=0)].append(r[5])
    assert body["resolution"] == "minute"
    assert body["points"] == [{"ts": iso(m), "mean": sum(v) / len(v), "min": min(v),
                               "max": max(v), "n": len(v)} for m, v in sorted(buckets.items())]
    hourly = get(api, "/api/v1/history", topic=TEMP, resolution="hour",
                 **{"from": "2026-11-22T23:00:00Z", "to": "2026-11-23T01:00:00Z"})["points"]
    assert [(p["ts"], p["n"]) for p in hourly] == [("2026-11-22T23:00:00.000Z", 5),
                                                   ("2026-11-23T00:00:00.000Z", 7)]


def test_auto_resolution_follows_the_range(api):
    def resolution(hours):
        return get(api, "/api/v1/history", topic=TEMP,
                   **{"to": "2026-11-23T01:00:00Z",
                      "from": (datetime(2026, 11, 23, 1, tzinfo=UTC) - timedelta(hours=hours))
                      .isoformat()})["resolution"]
    assert [resolution(1), resolution(24), resolution(24 * 10)] == ["raw", "minute", "hour"]


def test_aggregates_match_values_computed_from_the_raw_rows(api, db):
    body = get(api, "/api/v1/aggregates", devices="oficina/#", attribute="temperatura",
               **{"from": "2026-11-22T23:00:00Z", "to": "2026-11-23T01:00:00Z"})
    assert (body["devices"], body["attribute"]) == ("oficina/#", "temperatura")
    minutes = defaultdict(list)
    for r in readings():
        if r[3] == "temperatura":
            minutes[r[4].replace(second=0, microsecond=0)].append((r[5], f"{r[0]}/{r[1]}/{r[2]}"))
    # among devices with equal values, the one with the highest id is named (history.py)
    device_id = {r["name"]: r["id"] for r in db.execute(
        "SELECT id, site || '/' || room || '/' || name AS name FROM devices")}
    expected = []
    for minute, values in sorted(minutes.items()):
        numbers = [v for v, _ in values]
        low, high = min(numbers), max(numbers)
        expected.append({
            "minute": iso(minute), "mean": pytest.approx(sum(numbers) / len(numbers)),
            "min": low, "max": high, "n": len(numbers),
            "min_device": max((d for v, d in values if v == low), key=device_id.get),
            "max_device": max((d for v, d in values if v == high), key=device_id.get)})
    assert len(expected) == 5  # 23:58 to 00:02: across a minute and a day boundary
    assert body["minutes"] == expected
    one_room = get(api, "/api/v1/aggregates", devices="oficina/sala", attribute="temperatura",
                   **{"from": "2026-11-22T23:00:00Z", "to": "2026-11-23T01:00:00Z"})
    assert {m["max_device"] for m in one_room["minutes"]} == {"oficina/sala/sensor1"}


def test_an_aggregate_without_a_group_is_limited_in_rows_with_a_way_out(api, db):
    """300 sensors of one name in 300 rooms: no pre-aggregated group serves `+/+/sensor`, so
    each attribute's minutes are read one by one; 31 days of them is refused with how far
    the range may go, 7 days is answered, and the same 31 days over every device (a group)
    is answered too."""
    rooms = [f"sala{i:03}" for i in range(300)]
    ingest(db, readings=[("planta", room, "sensor", "temperatura", T0, float(i), None, "°C")
                         for i, room in enumerate(rooms)])
    month = {"from": "2026-10-24T00:00:00Z", "to": "2026-11-24T00:00:00Z"}
    body = get(api, "/api/v1/aggregates", 400, devices="+/+/sensor", attribute="temperatura",
               **month)
    assert "300 attributes over 31 days" in body["error"], body
    assert "at most 23 days, 8:00:00 at a time" in body["error"], body
    assert "whole site" in body["error"], body
    week = get(api, "/api/v1/aggregates", devices="+/+/sensor", attribute="temperatura",
               **{"from": "2026-11-17T00:00:00Z", "to": "2026-11-24T00:00:00Z"})
    assert [(m["n"], m["min"], m["max"]) for m in week["minutes"]] == [(300, 0.0, 299.0)]
    everything = get(api, "/api/v1/aggregates", devices="#", attribute="temperatura", **month)
    assert sum(m["n"] for m in everything["minutes"]) == 300 + 36  # and the fixture's 36


BAD_REQUESTS = [
    # (path, params, status, words the message must contain)
    ("/api/v1/history", {"topic": "oficina/servidores/nobody/temperatura"}, 404, "no readings"),
    ("/api/v1/history", {}, 400, "'topic' is required"),
    ("/api/v1/history", {"topic": "oficina/+/servidor1/temperatura"}, 400, "without + or #"),
    ("/api/v1/history", {"topic": "oficina/servidores"}, 400, "levels"),
    ("/api/v1/history", {"topic": TEMP, "from": "2026-11-23T00:00:00Z",
                         "to": "2026-11-22T00:00:00Z"}, 400, "inverted"),
    ("/api/v1/history", {"topic": TEMP, "from": "yesterday"}, 400, "ISO 8601"),
    ("/api/v1/history", {"topic": TEMP, "from": "2026-11-22T12:00:00"}, 400, "time zone"),
    ("/api/v1/history", {"topic": TEMP, "from": "2026-11-22T12:00:00 01:00"}, 400, "%2B"),
    ("/api/v1/history", {"topic": TEMP, "from": "0001-01-01T00:00:00Z"}, 400, "1970"),
    ("/api/v1/history", {"topic": TEMP, "to": "9999-12-31T23:59:59Z"}, 400, "1970"),
    ("/api/v1/history", {"topic": TEMP, "resolution": "raw", "from": "2026-11-01T00:00:00Z",
                         "to": "2026-11-23T00:00:00Z"}, 400, "at most"),
    ("/api/v1/history", {"topic": TEMP, "resolution": "minute", "from": "2026-01-01T00:00:00Z",
                         "to": "2026-11-23T00:00:00Z"}, 400, "longer than"),
    ("/api/v1/history", {"topic": TEMP, "resolution": "second"}, 400, "resolution"),
    ("/api/v1/history", {"topic": TEMP, "resolution": ""}, 400, "empty"),
    ("/api/v1/history", {"topic": TEMP, "from": "2026-11-22T12:00Z"}, 400, "ISO 8601"),
    ("/api/v1/history", {"topic": TEMP + "\x00"}, 400, "control character"),
    ("/api/v1/attributes", {"pattern": "oficina/#/x"}, 400, "last level"),
    ("/api/v1/attributes", {"pattern": ""}, 400, "empty"),
    ("/api/v1/latest", {"pattern": "a/b/c/d/e"}, 400, "levels"),
    ("/api/v1/aggregates", {"devices": "oficina/#"}, 400, "'attribute' is required"),
    ("/api/v1/aggregates", {"devices": "nowhere/#", "attribute": "temperatura"}, 404, "no device"),
    ("/api/v1/aggregates", {"attribute": "nothing"}, 404, "no device"),
    ("/api/v1/aggregates", {"attribute": "a/b"}, 400, "attribute name"),
    ("/api/v1/aggregates", {"devices": "a/b/c/d", "attribute": "temperatura"}, 400, "at most"),
    ("/api/v1/aggregates", {"attribute": "temperatura", "from": "2026-01-01T00:00:00Z",
                            "to": "2026-11-23T00:00:00Z"}, 400, "longer than"),
]


@pytest.mark.parametrize("path,params,status,words", BAD_REQUESTS)
def test_bad_parameters_are_4xx_with_a_message(api, path, params, status, words):
    body = get(api, path, status, **params)
    assert set(body) == {"error"} and words in body["error"], body
