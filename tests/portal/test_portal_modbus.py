"""The /modbus page: admins add, change and remove Modbus devices; everyone logged in sees
them with the polling figures that Node-RED writes into modbus_poll_stats."""
import re
from datetime import datetime, timezone

import pytest

from octopus_portal.auth import hasher

from .helpers import csrf_token, ingest, login

DEVICE = {"site": "planta", "room": "subestacion", "name": "reconectador1",
          "host": "192.168.1.20", "port": "502", "unit_id": "1", "profile": "osm27",
          "interval_s": "0.5", "enabled": "on"}


def add(client, **changes):
    form = {**DEVICE, **changes, "csrf_token": csrf_token(client, "/modbus")}
    return client.post("/modbus", data={k: v for k, v in form.items() if v is not None})


def devices(db):
    return db.execute("SELECT site, room, name, host, port, unit_id, profile, poll_interval_ms,"
                      " enabled FROM modbus_devices ORDER BY id").fetchall()


def test_admin_adds_a_device_and_sees_it_listed(logged_in, db):
    response = add(logged_in)
    assert response.status_code == 302
    assert devices(db) == [{"site": "planta", "room": "subestacion", "name": "reconectador1",
                            "host": "192.168.1.20", "port": 502, "unit_id": 1,
                            "profile": "osm27", "poll_interval_ms": 500, "enabled": True}]
    page = logged_in.get("/modbus").get_data(as_text=True)
    assert 'data-topic="planta/subestacion/reconectador1"' in page
    assert "not polled yet" in page and "192.168.1.20:502" in page


def test_the_profile_list_comes_from_the_profile_files(logged_in):
    page = logged_in.get("/modbus").get_data(as_text=True)
    assert 'value="osm27"' in page
    for attribute in ("ia", "ib", "ic", "va", "vb", "vc", "p_act", "p_react", "fp", "estado"):
        assert attribute in page


def test_a_profile_file_that_cannot_be_read_is_named_and_not_offered(make_app, tmp_path):
    (tmp_path / "good.json").write_text('{"title": "Good", "attributes": [{"name": "x"}]}')
    (tmp_path / "broken.json").write_text('{"title": ')
    client = make_app(MODBUS_PROFILES_DIR=str(tmp_path)).test_client()
    login(client)
    page = client.get("/modbus").get_data(as_text=True)
    assert 'value="good"' in page and 'value="broken"' not in page
    assert "broken.json cannot be read" in page
    response = add(client, profile="broken")
    assert response.status_code == 400 and "Profile: one of good." in response.get_data(as_text=True)


@pytest.mark.parametrize("changes,words", [
    ({"site": ""}, "Site"),
    ({"room": "sub/estacion"}, "Room"),
    ({"name": "+"}, "Device"),
    ({"site": "octopus"}, "Site"),
    ({"host": ""}, "Host"),
    ({"host": "bad host;rm"}, "Host"),
    ({"port": "0"}, "Port"),
    ({"port": "70000"}, "Port"),
    ({"port": "x"}, "Port"),
    ({"unit_id": "256"}, "Unit id"),
    ({"interval_s": "0.01"}, "Poll interval"),
    ({"interval_s": "soon"}, "Poll interval"),
    ({"profile": "nonesuch"}, "Profile"),
    ({"profile": "../osm27"}, "Profile"),
])
def test_a_bad_form_is_refused_with_its_reason_and_nothing_stored(logged_in, db, changes, words):
    response = add(logged_in, **changes)
    assert response.status_code == 400
    assert words in response.get_data(as_text=True)
    assert devices(db) == []


def test_a_second_device_with_the_same_topic_is_refused(logged_in, db):
    assert add(logged_in).status_code == 302
    response = add(logged_in, host="10.0.0.9")
    assert response.status_code == 400
    assert "already exists" in response.get_data(as_text=True)
    assert [d["host"] for d in devices(db)] == ["192.168.1.20"]


def test_admin_changes_disables_and_removes_a_device(logged_in, db):
    add(logged_in)
    device_id = db.execute("SELECT id FROM modbus_devices").fetchone()["id"]
    before = db.execute("SELECT updated_at FROM modbus_devices").fetchone()["updated_at"]
    assert 'value="192.168.1.20"' in logged_in.get(f"/modbus/{device_id}").get_data(as_text=True)

    form = {**DEVICE, "host": "10.0.0.7", "interval_s": "2", "csrf_token":
            csrf_token(logged_in, f"/modbus/{device_id}")}
    del form["enabled"]  # an unticked checkbox is not sent
    assert logged_in.post(f"/modbus/{device_id}", data=form).status_code == 302
    row = db.execute("SELECT host, poll_interval_ms, enabled, updated_at FROM modbus_devices"
                     ).fetchone()
    assert (row["host"], row["poll_interval_ms"], row["enabled"]) == ("10.0.0.7", 2000, False)
    assert row["updated_at"] > before  # how the poller sees that the device changed
    assert "disabled" in logged_in.get("/modbus").get_data(as_text=True)

    response = logged_in.post(f"/modbus/{device_id}/delete",
                              data={"csrf_token": csrf_token(logged_in, "/modbus")})
    assert response.status_code == 302 and devices(db) == []
    assert logged_in.get(f"/modbus/{device_id}").status_code == 404


def test_polling_figures_and_the_last_error_are_shown(logged_in, db):
    add(logged_in)
    device_id = db.execute("SELECT id FROM modbus_devices").fetchone()["id"]
    db.execute("INSERT INTO modbus_poll_stats (device_id, worker, since, status, polls, ok,"
               " timeouts, exceptions, connection_errors, garbage, overflows, last_error,"
               " last_error_at) VALUES (%s, 'w1', now(), 'offline', 40, 31, 4, 3, 1, 1, 2,"
               " 'Modbus exception 4 (server device failure)', now())", (device_id,))
    page = logged_in.get("/modbus").get_data(as_text=True)
    assert "31 / 40" in page
    for kind, count in (("timeouts", 4), ("exceptions", 3), ("connection_errors", 1),
                        ("garbage", 1), ("overflows", 2)):
        assert f'data-kind="{kind}" data-count="{count}"' in page
    assert "Modbus exception 4 (server device failure)" in page
    assert '<span class="status status-offline">offline</span>' in page


def test_others_see_the_devices_but_only_admins_change_them(app, logged_in, db):
    add(logged_in)
    device_id = db.execute("SELECT id FROM modbus_devices").fetchone()["id"]
    db.execute("INSERT INTO users (username, password_hash, role) VALUES (%s, %s, 'viewer')",
               ("vera", hasher.hash("viewer password")))
    client = app.test_client()
    assert login(client, "vera", "viewer password").status_code == 302
    page = client.get("/modbus").get_data(as_text=True)
    assert "reconectador1" in page and 'data-testid="modbus-form"' not in page
    token = csrf_token(client, "/")
    assert add(client).status_code == 403
    assert client.get(f"/modbus/{device_id}").status_code == 403
    assert client.post(f"/modbus/{device_id}", data={**DEVICE, "csrf_token": token}).status_code == 403
    assert client.post(f"/modbus/{device_id}/delete", data={"csrf_token": token}).status_code == 403
    assert len(devices(db)) == 1


def test_forms_need_the_csrf_token_and_a_login(app, logged_in, db):
    assert logged_in.post("/modbus", data=DEVICE).status_code == 400
    assert devices(db) == []
    assert app.test_client().get("/modbus").headers["Location"].startswith("/login")


def test_the_recloser_view_lays_out_the_stored_values(logged_in, db):
    add(logged_in)
    device_id = db.execute("SELECT id FROM modbus_devices").fetchone()["id"]
    at = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
    values = {"ia": 101.5, "ib": 99.8, "ic": 100.2, "va": 13221.4, "vb": 13190.0,
              "vc": 13250.9, "p_act": 3900.25, "p_react": 1100.5, "fp": 0.9624}
    ingest(db, [("planta", "subestacion", "reconectador1", name, at, value, None, None)
                for name, value in values.items()]
           + [("planta", "subestacion", "reconectador1", "estado", at, None, "lockout", None)],
           statuses=[("planta", "subestacion", "reconectador1", "online", at)])
    assert 'data-testid="modbus-recloser-view"' in logged_in.get("/modbus").get_data(as_text=True)
    page = logged_in.get(f"/modbus/{device_id}/recloser").get_data(as_text=True)
    for name, value in values.items():
        cell = re.search(rf'data-testid="recloser-{name}".*?</td>', page, re.S).group(0)
        assert f'<span class="value">{value:g}</span>' in cell, (name, cell)
    assert 'data-state="lockout"' in page and "status-online" in page
    # phases side by side: one row of currents, one of voltages, A, B, C in that order
    currents = re.search(r"<th>Current</th>(.*?)</tr>", page, re.S).group(1)
    assert [m for m in re.findall(r'data-attribute="(\w+)"', currents)] == ["ia", "ib", "ic"]


def test_no_recloser_view_for_a_profile_without_those_attributes(make_app, tmp_path, db):
    (tmp_path / "meter.json").write_text('{"title": "Meter", "attributes": [{"name": "kwh"}]}')
    client = make_app(MODBUS_PROFILES_DIR=str(tmp_path)).test_client()
    login(client)
    assert add(client, profile="meter").status_code == 302
    device_id = db.execute("SELECT id FROM modbus_devices").fetchone()["id"]
    assert 'modbus-recloser-view' not in client.get("/modbus").get_data(as_text=True)
    assert client.get(f"/modbus/{device_id}/recloser").status_code == 404
