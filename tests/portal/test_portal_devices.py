"""The device tree on the home page, and its JSON snapshot."""
from datetime import datetime, timedelta, timezone

from .helpers import ingest, tree

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def test_tree_shows_site_room_device_attribute_with_last_value(logged_in, db):
    ingest(db, readings=[
        ("oficina", "servidores", "servidor1", "temperatura", T0, 21.0, None, "°C"),
        ("oficina", "servidores", "servidor1", "temperatura", T0 + timedelta(seconds=5), 23.5, None, "°C"),
        ("oficina", "servidores", "servidor1", "porta", T0, None, "open", None),
        ("oficina", "servidores", "servidor1", "ligado", T0, 1.0, "true", None),
        ("fabrica", "linha1", "prensa", "contagem", T0, 1000.0, None, "un"),
    ], statuses=[("oficina", "servidores", "servidor1", "online", T0)])
    response = logged_in.get("/")
    assert response.status_code == 200
    nodes = tree(response.get_data(as_text=True))

    assert nodes["oficina"]["testid"] == "site" and nodes["oficina"]["name"] == "oficina"
    assert nodes["oficina/servidores"]["testid"] == "room"
    device = nodes["oficina/servidores/servidor1"]
    assert device["testid"] == "device" and device["name"] == "servidor1"
    assert device["status"] == "online"
    temperature = nodes["oficina/servidores/servidor1/temperatura"]
    assert temperature["testid"] == "attribute"
    assert (temperature["name"], temperature["value"], temperature["unit"]) == \
        ("temperatura", "23.5", "°C")
    assert temperature["ts"] == "2026-11-22T12:00:05.000Z"
    assert nodes["oficina/servidores/servidor1/porta"]["value"] == "open"  # txt wins over num
    assert nodes["oficina/servidores/servidor1/ligado"]["value"] == "true"
    assert nodes["fabrica/linha1/prensa/contagem"]["value"] == "1000"
    assert nodes["fabrica/linha1/prensa"]["status"] == "unknown"  # never said
    # sites in name order
    keys = list(nodes)
    assert keys.index("fabrica") < keys.index("oficina")


def test_a_device_that_only_sent_its_status_is_listed(logged_in, db):
    ingest(db, statuses=[("casa", "sala", "sensor9", "offline", T0)])
    nodes = tree(logged_in.get("/").get_data(as_text=True))
    assert nodes["casa/sala/sensor9"]["status"] == "offline"


def test_names_from_topics_are_escaped(logged_in, db):
    ingest(db, readings=[("s", "r", "<script>alert(1)</script>", "a", T0, 1.0, None, None)])
    html = logged_in.get("/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_empty_tree_says_how_devices_appear(logged_in):
    html = logged_in.get("/").get_data(as_text=True)
    assert 'data-testid="devices-empty"' in html
    assert not [k for k, v in tree(html).items() if v["testid"] == "site"]


def test_snapshot_is_shaped_like_a_live_message(logged_in, db):
    ingest(db, readings=[("s", "r", "d", "t", T0, 20.5, None, "°C"),
                         ("s", "r", "d", "state", T0, None, "open", None)],
           statuses=[("s", "r", "d", "online", T0)])
    snapshot = logged_in.get("/devices/snapshot.json").get_json()
    assert snapshot["rejects"] == 0
    assert snapshot["statuses"] == [{"site": "s", "room": "r", "device": "d", "status": "online",
                                     "ts": "2026-11-22T12:00:00.000Z"}]
    assert sorted(snapshot["readings"], key=lambda r: r["attribute"]) == [
        {"site": "s", "room": "r", "device": "d", "attribute": "state",
         "ts": "2026-11-22T12:00:00.000Z", "value": "open", "unit": None},
        {"site": "s", "room": "r", "device": "d", "attribute": "t",
         "ts": "2026-11-22T12:00:00.000Z", "value": 20.5, "unit": "°C"}]
