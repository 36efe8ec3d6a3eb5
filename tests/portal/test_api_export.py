"""GET /api/v1/export.csv: raw rows read back exactly, aggregates equal the aggregate API."""
import csv
import io
import random
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import requests

from octopus_portal.db import POOL
from octopus_portal.keys import create_key

from .helpers import ingest
from .test_api_docs import served  # noqa: F401 (a fixture: the app on a real HTTP port)

UTC = timezone.utc
T0 = datetime(2026, 11, 22, 23, 55, tzinfo=UTC)  # the range crosses midnight UTC
RANGE = {"from": "2026-11-22T23:00:00Z", "to": "2026-11-23T01:00:00Z"}


def stored_readings():
    """Readings of 3 devices at uneven times (microseconds too), a state and a boolean."""
    rng = random.Random(4)
    rows = []
    for device in ("servidor1", "servidor2", "sensor9"):
        ts = T0
        for _ in range(150):
            ts += timedelta(microseconds=rng.randrange(1, 4_000_000))
            rows.append(("oficina", "servidores", device, "temperatura", ts,
                         round(rng.uniform(-10, 40), rng.randrange(0, 6)), None, "°C"))
    rows.append(("oficina", "sala", "porta1", "estado", T0 + timedelta(seconds=7), None, "open", None))
    rows.append(("oficina", "sala", "porta1", "ligado", T0 + timedelta(seconds=8), 1.0, "true", None))
    rows.append(("fabrica", "linha1", "prensa", "temperatura", T0, 99.0, None, "°C"))
    return rows


@pytest.fixture
def api(client, db):
    ingest(db, readings=stored_readings())
    db.execute("SELECT run_maintenance(0, 0)")
    _, secret = create_key(db, "exporter", ["read"], None, None)
    return client, {"Authorization": f"Bearer {secret}"}


def export(api, status=200, **params):
    client, headers = api
    response = client.get("/api/v1/export.csv", headers=headers, query_string=params)
    assert response.status_code == status, response.get_data(as_text=True)
    return response


def parse(response):
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="octopus-')
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


@pytest.mark.parametrize("tz", ["UTC", "Europe/Lisbon", "America/Sao_Paulo", "Asia/Kolkata"])
def test_raw_export_reads_back_as_exactly_the_stored_rows(api, db, tz):
    response = export(api, pattern="oficina/#", tz=tz, **RANGE)
    assert response.is_streamed
    rows = parse(response)
    assert rows[0] == ["time", "site", "room", "device", "attribute", "value", "unit"]
    offset = datetime(2026, 11, 23, tzinfo=ZoneInfo(tz)).strftime("%z")
    assert all(row[0].replace(":", "").endswith(offset) or offset == "+0000" and
               row[0].endswith("+00:00") for row in rows[1:])
    exported = [(datetime.fromisoformat(t), site, room, device, attribute, value, unit or None)
                for t, site, room, device, attribute, value, unit in rows[1:]]
    stored = db.execute(
        "SELECT m.ts, d.site, d.room, d.name, a.name AS attribute, m.num, m.txt, a.unit"
        "  FROM measurements m JOIN attributes a ON a.id = m.attribute_id"
        "  JOIN devices d ON d.id = a.device_id WHERE d.site = 'oficina'").fetchall()
    expected = sorted((r["ts"], r["site"], r["room"], r["name"], r["attribute"],
                       r["txt"] if r["txt"] is not None else r["num"], r["unit"]) for r in stored)
    assert len(expected) == 452
    # the file is in time order; values read back as the same floats, states as text
    assert [row[0] for row in exported] == sorted(row[0] for row in exported)
    readback = sorted((t, s, r, d, a, v if a in ("estado", "ligado") else float(v), u)
                      for t, s, r, d, a, v, u in exported)
    assert readback == expected


def test_raw_export_is_limited_to_the_range(api):
    rows = parse(export(api, pattern="fabrica/#", **RANGE))
    assert rows[1][:2] == ["2026-11-22T23:55:00+00:00", "fabrica"] and len(rows) == 2
    rows = parse(export(api, pattern="fabrica/#", **{"from": "2026-11-22T23:55:00.000001Z",
                                                     "to": "2026-11-23T01:00:00Z"}))
    assert rows == [["time", "site", "room", "device", "attribute", "value", "unit"]]


def test_aggregate_export_equals_the_aggregate_api(api):
    client, headers = api
    params = {"devices": "oficina/servidores", "attribute": "temperatura", **RANGE}
    answer = client.get("/api/v1/aggregates", headers=headers, query_string=params).get_json()
    rows = parse(export(api, kind="aggregate", tz="America/Sao_Paulo", **params))
    assert rows[0] == ["minute", "mean", "min", "max", "count", "min_device", "max_device"]
    assert len(answer["minutes"]) == 6  # 23:55 to 00:00 UTC
    assert rows[1][0] == "2026-11-22T20:55:00-03:00"
    assert [(datetime.fromisoformat(m), float(mean), float(low), float(high), int(n), dmin, dmax)
            for m, mean, low, high, n, dmin, dmax in rows[1:]] == \
        [(datetime.fromisoformat(m["minute"].replace("Z", "+00:00")), m["mean"], m["min"],
          m["max"], m["n"], m["min_device"], m["max_device"]) for m in answer["minutes"]]


def test_text_that_a_spreadsheet_would_run_is_defused(client, db):
    ingest(db, readings=[("s", "r", "=HYPERLINK(1)", "a", T0, 1.5, None, "@unit")])
    _, secret = create_key(db, "k", ["read"], None, None)
    response = client.get("/api/v1/export.csv", query_string=RANGE,
                          headers={"Authorization": f"Bearer {secret}"})
    assert parse(response)[1][2:] == ["r", "'=HYPERLINK(1)", "a", "1.5", "'@unit"]


@pytest.mark.parametrize("params,status,words", [
    ({"tz": "Mars/Olympus"}, 400, "IANA"),
    ({"tz": "../../etc/passwd"}, 400, "IANA"),
    ({"tz": ""}, 400, "empty"),
    ({"tz": "zone.tab"}, 400, "IANA"),
    ({"kind": "pivot"}, 400, "raw or aggregate"),
    ({"pattern": "oficina/#/x"}, 400, "last level"),
    ({"pattern": "nowhere/#"}, 404, "no stored attribute"),
    ({"kind": "aggregate"}, 400, "'attribute' is required"),
    ({"from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, 400, "longer than"),
    ({"from": "2026-11-23T00:00:00Z", "to": "2026-11-22T00:00:00Z"}, 400, "inverted"),
    ({"to": "2026-11-23"}, 400, "ISO 8601"),
    ({"to": "2026-11-23T00:00:00"}, 400, "time zone"),
    ({"to": "20261123T000000Z"}, 400, "ISO 8601"),
    ({"pattern": ""}, 400, "empty"),
])
def test_bad_export_parameters_are_4xx_json(api, params, status, words):
    response = export(api, status, **params)
    assert response.is_json and words in response.get_json()["error"]


def many_readings(db, n):
    """n readings of one attribute, 10 ms apart, stored in one ingest batch."""
    ingest(db, readings=[("big", "r", "d", "t", T0 + timedelta(milliseconds=10 * i), float(i),
                          None, None) for i in range(n)])


def connections_in_transaction(db):
    """Portal connections inside a transaction: an export still running between two cursor
    fetches is 'idle in transaction', and 'active' during a fetch, so both count."""
    return db.execute("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
                      " AND application_name = 'octopus-portal' AND xact_start IS NOT NULL"
                      ).fetchone()["n"]


def connections_lent(app):
    """Connections of the portal's pool not given back to it."""
    stats = app.extensions[POOL].get_stats()
    return stats["pool_size"] - stats["pool_available"]


def test_a_file_larger_than_one_cursor_batch_is_whole(client, db, caplog):
    many_readings(db, 12_345)  # history.export_raw reads 5,000 rows at a time
    _, secret = create_key(db, "k", ["read"], None, None)
    response = client.get("/api/v1/export.csv", query_string={"pattern": "big/#", **RANGE},
                          headers={"Authorization": f"Bearer {secret}"})
    rows = parse(response)
    assert [float(row[5]) for row in rows[1:]] == [float(i) for i in range(12_345)]
    assert connections_in_transaction(db) == 0
    assert "Discarding connection" not in caplog.text


def test_a_client_leaving_mid_file_gives_the_connection_back(app, client, db, caplog):
    many_readings(db, 20_000)
    _, secret = create_key(db, "k", ["read"], None, None)
    headers = {"Authorization": f"Bearer {secret}"}
    for _ in range(3):
        response = client.get("/api/v1/export.csv", headers=headers, buffered=False,
                              query_string={"pattern": "big/#", **RANGE})
        first_chunk = next(iter(response.response))
        assert first_chunk.startswith(b"time,site,room")
        response.close()  # what the server does when the client goes away
        assert connections_in_transaction(db) == 0
        assert connections_lent(app) == 0
    head = client.head("/api/v1/export.csv", headers=headers,
                       query_string={"pattern": "big/#", **RANGE})
    assert head.status_code == 200 and head.data == b""
    head.close()  # as a WSGI server does after every response
    assert connections_in_transaction(db) == 0
    assert "Discarding connection" not in caplog.text
    assert client.get("/api/v1/devices", headers=headers).status_code == 200


def test_over_real_http_a_file_streams_whole_and_a_cut_one_frees_its_connection(
        app, served, db, caplog):
    many_readings(db, 30_000)
    _, secret = create_key(db, "k", ["read"], None, None)
    url = served + "/api/v1/export.csv"
    params, headers = {"pattern": "big/#", **RANGE}, {"Authorization": f"Bearer {secret}"}
    with requests.get(url, params=params, headers=headers, stream=True, timeout=30) as whole:
        assert "Content-Length" not in whole.headers  # streamed, not built first
        rows = list(csv.reader(io.StringIO(whole.text)))
    assert len(rows) == 30_001 and rows[-1][5] == "29999.0"
    for _ in range(3):
        with requests.get(url, params=params, headers=headers, stream=True, timeout=30) as cut:
            next(cut.iter_content(1024))
        # the server notices the closed socket at its next write, then closes the body
        deadline = time.monotonic() + 10
        while connections_lent(app) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert connections_lent(app) == 0
        assert connections_in_transaction(db) == 0
    assert "Discarding connection" not in caplog.text  # given back clean, not thrown away
