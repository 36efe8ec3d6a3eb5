"""Who may call /api/v1: keys (bearer or X-API-Key) and sessions, scopes, revocation, sites."""
from datetime import datetime, timedelta, timezone

import pytest

from octopus_portal.auth import hasher
from octopus_portal.keys import create_key

from .helpers import csrf_token, ingest, login

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
RANGE = {"from": "2026-11-22T11:00:00Z", "to": "2026-11-22T13:00:00Z"}
READINGS = [
    ("oficina", "servidores", "servidor1", "temperatura", T0, 22.0, None, "°C"),
    ("oficina", "servidores", "servidor1", "temperatura", T0 + timedelta(seconds=30), 23.0, None, "°C"),
    ("fabrica", "linha1", "prensa", "temperatura", T0, 80.0, None, "°C"),
]
GET_PATHS = ["/api/v1/devices", "/api/v1/attributes", "/api/v1/latest",
             "/api/v1/history?topic=oficina/servidores/servidor1/temperatura",
             "/api/v1/aggregates?attribute=temperatura", "/api/v1/export.csv",
             "/api/v1/openapi.json"]


def key(db, scopes=("read",), site=None):
    """A new key's Authorization header."""
    _, secret = create_key(db, "test", scopes, site, None)
    return {"Authorization": f"Bearer {secret}"}


def error_of(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    message = response.get_json()["error"]
    assert isinstance(message, str) and len(message) > 10
    return message


@pytest.mark.parametrize("path", GET_PATHS)
def test_no_key_and_no_session_is_401_json(client, path):
    response = client.get(path)
    message = error_of(response, 401)
    assert "API key" in message
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_post_without_credentials_is_401_not_a_csrf_error(client):
    error_of(client.post("/api/v1/readings", json={"topic": "a/b/c/d", "value": 1}), 401)


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer oct_" + "A" * 43},            # well-formed, never issued
    {"Authorization": "Bearer not-a-key"},
    {"Authorization": "Basic YWRtaW46c2VjcmV0"},            # another scheme
    {"X-API-Key": "oct_" + "B" * 43},
    {"Authorization": "Bearer "},
])
def test_unknown_or_malformed_key_is_401(client, headers):
    error_of(client.get("/api/v1/devices", headers=headers), 401)


def test_bearer_and_x_api_key_both_work(client, db):
    headers = key(db)
    assert client.get("/api/v1/devices", headers=headers).status_code == 200
    secret = headers["Authorization"].split()[1]
    assert client.get("/api/v1/devices", headers={"X-API-Key": secret}).status_code == 200
    assert client.get("/api/v1/devices",
                      headers={"Authorization": f"bearer {secret}"}).status_code == 200


def test_revoked_key_is_401_and_says_so(client, db):
    headers = key(db)
    assert client.get("/api/v1/devices", headers=headers).status_code == 200
    db.execute("UPDATE api_keys SET revoked_at = now()")
    assert "revoked" in error_of(client.get("/api/v1/devices", headers=headers), 401)


def test_read_key_cannot_write_and_write_key_cannot_read(client, db):
    reader, writer = key(db, ["read"]), key(db, ["write"])
    reading = {"topic": "oficina/servidores/servidor1/temperatura", "value": 1}
    assert "scope write" in error_of(client.post("/api/v1/readings", json=reading,
                                                 headers=reader), 403)
    assert "scope read" in error_of(client.get("/api/v1/devices", headers=writer), 403)


def test_key_use_is_recorded_and_sets_no_cookie(client, db):
    headers = key(db)
    assert db.execute("SELECT last_used_at FROM api_keys").fetchone()["last_used_at"] is None
    response = client.get("/api/v1/devices", headers=headers)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert db.execute("SELECT last_used_at FROM api_keys").fetchone()["last_used_at"] is not None


def test_a_key_does_not_open_portal_pages(client, db):
    headers = key(db, ["read", "write"])
    for path in ["/", "/rejects", "/keys", "/api/docs"]:
        response = client.get(path, headers=headers)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_a_bad_key_beside_a_session_is_refused(logged_in):
    error_of(logged_in.get("/api/v1/devices", headers={"Authorization": "Bearer nope"}), 401)


def test_session_reads_and_session_writes_need_the_csrf_token(logged_in):
    assert logged_in.get("/api/v1/devices").status_code == 200
    reading = {"topic": "oficina/servidores/servidor1/temperatura", "value": 1}
    assert "X-CSRFToken" in error_of(logged_in.post("/api/v1/readings", json=reading), 400)
    token = csrf_token(logged_in, "/")
    # past authentication and CSRF: this app has no MQTT connection, so the broker step fails
    response = logged_in.post("/api/v1/readings", json=reading, headers={"X-CSRFToken": token})
    assert "MQTT" in error_of(response, 503)


def test_key_writes_need_no_csrf_token(client, db):
    reading = {"topic": "oficina/servidores/servidor1/temperatura", "value": 1}
    response = client.post("/api/v1/readings", json=reading, headers=key(db, ["write"]))
    error_of(response, 503)  # past authentication; no broker in this test


def test_a_viewer_session_may_read_but_not_write(app, db):
    db.execute("INSERT INTO users (username, password_hash, role) VALUES (%s, %s, 'viewer')",
               ("vera", hasher.hash("viewer password")))
    client = app.test_client()
    assert login(client, "vera", "viewer password").status_code == 302
    assert client.get("/api/v1/devices").status_code == 200
    response = client.post("/api/v1/readings", json={"topic": "a/b/c/d", "value": 1},
                           headers={"X-CSRFToken": csrf_token(client, "/")})
    assert "role" in error_of(response, 403)


def test_site_restricted_key_sees_only_its_site(client, db):
    ingest(db, readings=READINGS)
    db.execute("SELECT run_maintenance(0, 0)")
    headers = key(db, ["read"], site="oficina")

    devices = client.get("/api/v1/devices", headers=headers).get_json()["devices"]
    assert [d["topic"] for d in devices] == ["oficina/servidores/servidor1"]
    for path in ["/api/v1/attributes", "/api/v1/latest?pattern=%2B/%23"]:
        body = client.get(path, headers=headers).get_json()
        topics = [item["topic"] for item in next(iter(body.values()))]
        assert topics == ["oficina/servidores/servidor1/temperatura"], path
    aggregate = client.get("/api/v1/aggregates", headers=headers,
                           query_string={"attribute": "temperatura", **RANGE}).get_json()
    assert [(m["n"], m["max"], m["max_device"]) for m in aggregate["minutes"]] == \
        [(2, 23.0, "oficina/servidores/servidor1")]
    csv_text = client.get("/api/v1/export.csv", headers=headers,
                          query_string=RANGE).get_data(as_text=True)
    assert "oficina" in csv_text and "fabrica" not in csv_text

    for path, params in [("/api/v1/history", {"topic": "fabrica/linha1/prensa/temperatura"}),
                         ("/api/v1/attributes", {"pattern": "fabrica/#"}),
                         ("/api/v1/aggregates", {"devices": "fabrica/#", "attribute": "temperatura"}),
                         ("/api/v1/export.csv", {"pattern": "fabrica/+/+/+"})]:
        assert "oficina" in error_of(client.get(path, headers=headers, query_string=params), 403)


def test_site_restricted_key_cannot_write_elsewhere(client, db):
    headers = key(db, ["write"], site="oficina")
    response = client.post("/api/v1/readings", headers=headers, json={"readings": [
        {"topic": "oficina/servidores/servidor1/temperatura", "value": 1},
        {"topic": "fabrica/linha1/prensa/temperatura", "value": 2}]})
    assert "oficina" in error_of(response, 403)


def test_unknown_api_paths_and_methods_answer_json(client, db):
    headers = key(db)
    assert "openapi.json" in error_of(client.get("/api/v1/nothing", headers=headers), 404)
    error_of(client.delete("/api/v1/devices", headers=headers), 405)
