"""Login, logout, sessions, CSRF and the first admin."""
import logging

import pytest

from octopus_portal import config
from octopus_portal.auth import WRONG_LOGIN

from .helpers import ADMIN_PASSWORD, ADMIN_USER, csrf_token, login

PAGES = ["/", "/rejects", "/devices/snapshot.json", "/no-such-page"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_redirects_anonymous_visitors_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_login_page_and_static_files_are_public(client):
    assert client.get("/login").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/static/portal.js").status_code == 200
    assert client.get("/static/vendor/socket.io.min.js").status_code == 200


def test_login_lands_on_the_page_that_asked_for_it(client, db):
    first = client.get("/rejects")
    assert first.headers["Location"] == "/login?next=%2Frejects"
    response = login(client, next="/rejects")
    assert response.status_code == 302
    assert response.headers["Location"] == "/rejects"
    assert client.get("/rejects").status_code == 200
    user = db.execute("SELECT last_login_at FROM users WHERE username = %s",
                      (ADMIN_USER,)).fetchone()
    assert user["last_login_at"] is not None


def test_login_page_sends_a_logged_in_user_on(logged_in):
    assert logged_in.get("/login?next=/rejects").headers["Location"] == "/rejects"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_login_never_redirects_to_another_site(client, target):
    response = login(client, next=target)
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("username,password", [(ADMIN_USER, "wrong"), ("nobody", ADMIN_PASSWORD)])
def test_wrong_login_is_refused_and_keeps_the_username(client, db, username, password):
    response = login(client, username, password)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert WRONG_LOGIN in body
    assert f'value="{username}"' in body
    assert client.get("/").status_code == 302  # still not logged in
    assert db.execute("SELECT last_login_at FROM users").fetchone()["last_login_at"] is None


def test_login_form_requires_the_csrf_token(client):
    response = client.post("/login", data={"username": ADMIN_USER, "password": ADMIN_PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302
    response = client.post("/login", data={"csrf_token": "forged", "username": ADMIN_USER,
                                           "password": ADMIN_PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_logout_needs_a_post_with_the_token(logged_in):
    assert logged_in.get("/logout").status_code == 405
    assert logged_in.post("/logout").status_code == 400
    assert logged_in.get("/").status_code == 200
    response = logged_in.post("/logout", data={"csrf_token": csrf_token(logged_in, "/")})
    assert response.headers["Location"] == "/login"
    assert logged_in.get("/").status_code == 302


def test_session_cookie_is_httponly_and_samesite_lax(client):
    login(client)
    cookie = client.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax" and not cookie.secure


def test_secure_cookie_can_be_required(make_app):
    client = make_app(SESSION_COOKIE_SECURE=True).test_client()
    response = client.get("/login", base_url="https://localhost")
    assert "Secure" in response.headers["Set-Cookie"]
    assert config.from_environ({"PORTAL_COOKIE_SECURE": "true"})["SESSION_COOKIE_SECURE"] is True


def test_passwords_are_stored_as_argon2_hashes(app, db):
    row = db.execute("SELECT role, password_hash FROM users").fetchone()
    assert row["role"] == "admin"
    assert row["password_hash"].startswith("$argon2id$")
    assert ADMIN_PASSWORD not in row["password_hash"]


def test_first_admin_is_created_once(make_app, db):
    make_app()
    # a later boot with other admin settings neither adds a user nor changes the password
    client = make_app(PORTAL_ADMIN_USER="someone", PORTAL_ADMIN_PASSWORD="other").test_client()
    users = db.execute("SELECT username, role FROM users").fetchall()
    assert users == [{"username": ADMIN_USER, "role": "admin"}]
    assert login(client).status_code == 302


def test_no_admin_without_a_password(make_app, db, caplog):
    with caplog.at_level(logging.WARNING):
        make_app(PORTAL_ADMIN_PASSWORD="")
    assert db.execute("SELECT count(*) AS n FROM users").fetchone()["n"] == 0
    assert "PORTAL_ADMIN_PASSWORD" in caplog.text


def test_pages_send_security_headers(client):
    headers = client.get("/login").headers
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_failed_logins_are_rate_limited_per_username_and_address(make_app):
    """Guessing passwords: after LOGIN_RATE_LIMIT failed tries the form answers 429 with a
    message, even with the right password, until the window has passed; another username
    from the same address is not locked out by them, and logging in does not count."""
    app = make_app(LOGIN_RATE_LIMIT="3 per minute", LOGIN_RATE_LIMIT_PER_ADDRESS="6 per minute")
    client = app.test_client()
    for _ in range(2):  # successful logins do not count against the limit
        assert login(client).status_code == 302
        client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    for _ in range(3):
        assert login(client, password="guess").status_code == 200
    refused = login(client)  # the right password, but too late
    assert refused.status_code == 429
    assert "Too many failed logins" in refused.get_data(as_text=True)
    assert int(refused.headers["Retry-After"]) > 0
    assert client.get("/").status_code == 302  # not logged in
    # the per-username limit is not the address's: another name still gets its tries
    assert login(client, username="someone", password="x").status_code == 200
    # but the address as a whole has its own limit (spraying many usernames)
    for name in ("a", "b"):
        login(client, username=name, password="x")
    assert login(client, username="c", password="x").status_code == 429
