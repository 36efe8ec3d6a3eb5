"""The /keys page: admins create a key (shown once, stored hashed), list and revoke keys."""
import hashlib
import re
from datetime import timezone

import pytest

from octopus_portal.auth import hasher

from .helpers import csrf_token, login

NEW_KEY = re.compile(r'data-testid="new-key-value">(oct_[A-Za-z0-9_-]{43})<')


def create(client, **form):
    data = {"csrf_token": csrf_token(client, "/keys"), "name": "grafana", "scopes": ["read"],
            "site": "", **form}
    return client.post("/keys", data=data)


def test_admin_creates_a_key_that_is_shown_once_and_stored_hashed(logged_in, db):
    response = create(logged_in, name="grafana", scopes=["read", "write"], site="oficina")
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    key = NEW_KEY.search(response.get_data(as_text=True)).group(1)

    row = db.execute("SELECT * FROM api_keys").fetchone()
    assert (row["name"], row["scopes"], row["site"]) == ("grafana", ["read", "write"], "oficina")
    assert bytes(row["key_hash"]) == hashlib.sha256(key.encode()).digest()
    assert row["prefix"] == key[:12]
    assert key not in str(row)  # only the hash and the prefix are kept

    listing = logged_in.get("/keys").get_data(as_text=True)
    assert key not in listing and key[:12] in listing and "grafana" in listing
    created = row["created_at"].astimezone(timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"
    assert f'<time datetime="{created}">{created}</time>' in listing  # an element, not escaped text
    assert logged_in.get("/api/v1/devices", headers={"X-API-Key": key}).status_code == 200


def test_every_key_is_different(logged_in):
    keys = {NEW_KEY.search(create(logged_in).get_data(as_text=True)).group(1) for _ in range(3)}
    assert len(keys) == 3


def test_revoking_a_key_refuses_it_from_then_on(logged_in, db):
    key = NEW_KEY.search(create(logged_in).get_data(as_text=True)).group(1)
    key_id = db.execute("SELECT id FROM api_keys").fetchone()["id"]
    assert logged_in.get("/api/v1/devices", headers={"X-API-Key": key}).status_code == 200
    response = logged_in.post(f"/keys/{key_id}/revoke",
                              data={"csrf_token": csrf_token(logged_in, "/keys")})
    assert response.status_code == 302
    assert db.execute("SELECT revoked_at FROM api_keys").fetchone()["revoked_at"] is not None
    assert 'data-testid="key-revoked"' in logged_in.get("/keys").get_data(as_text=True)
    assert logged_in.get("/api/v1/devices", headers={"X-API-Key": key}).status_code == 401


@pytest.mark.parametrize("form,words", [
    ({"name": ""}, "Name"),
    ({"name": "x" * 65}, "Name"),
    ({"scopes": []}, "Scopes"),
    ({"scopes": ["admin"]}, "Scopes"),
    ({"site": "oficina/sala"}, "Site"),
    ({"site": "+"}, "Site"),
    ({"site": "octopus"}, "Site"),
    ({"site": "ofi\x01cina"}, "Site"),
])
def test_a_bad_form_is_refused_and_nothing_stored(logged_in, db, form, words):
    response = create(logged_in, **form)
    assert response.status_code == 400
    assert words in response.get_data(as_text=True)
    assert db.execute("SELECT count(*) AS n FROM api_keys").fetchone()["n"] == 0


def test_key_forms_need_the_csrf_token(logged_in, db):
    assert logged_in.post("/keys", data={"name": "x", "scopes": ["read"]}).status_code == 400
    create(logged_in)
    key_id = db.execute("SELECT id FROM api_keys").fetchone()["id"]
    assert logged_in.post(f"/keys/{key_id}/revoke").status_code == 400
    assert db.execute("SELECT revoked_at FROM api_keys").fetchone()["revoked_at"] is None


def test_only_admins_manage_keys_and_see_the_link(app, logged_in, db):
    assert 'data-testid="nav-api-keys"' in logged_in.get("/").get_data(as_text=True)
    db.execute("INSERT INTO users (username, password_hash, role) VALUES (%s, %s, 'operator')",
               ("otto", hasher.hash("operator password")))
    client = app.test_client()
    assert login(client, "otto", "operator password").status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert 'data-testid="nav-api-keys"' not in page and 'data-testid="nav-api-docs"' in page
    assert client.get("/keys").status_code == 403
    token = csrf_token(client, "/")
    assert client.post("/keys", data={"csrf_token": token, "name": "x",
                                      "scopes": ["read"]}).status_code == 403
    assert db.execute("SELECT count(*) AS n FROM api_keys").fetchone()["n"] == 0


def test_anonymous_visitors_go_to_login(client):
    assert client.get("/keys").headers["Location"].startswith("/login")
