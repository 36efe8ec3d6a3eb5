"""Secure by default, checked over every route the app has (issue 7): no door without a
login, no admin action for a viewer, no form without its CSRF token, no secret in clear.

The routes come from app.url_map, so a route added later is covered without touching this
file, and a route whose rights are not declared below makes a test fail until it is."""
import hashlib
import re

import pytest

from octopus_portal import live, socketio
from octopus_portal.auth import PUBLIC_ENDPOINTS, hasher

from .helpers import ADMIN_PASSWORD, add_user, csrf_token, login
from .test_api_keys import NEW_KEY, create as create_key

# The documented public endpoints (doc/security.md): the login form, static files and the
# health check, which says only "ok" or "down" per component (test_portal_health.py).
PUBLIC = {"auth.login", "static", "health.healthz"}
# What a viewer may send besides GET: logging in and out, their own password.
VIEWER_MAY_SEND = {"auth.login", "auth.logout", "account.change_password"}
# What an operator may send on top (doc/security.md: acknowledge alerts, command devices,
# and write readings through the API with their session).
OPERATOR_MAY_SEND = {"alerts.acknowledge", "commands.send", "api.post_readings",
                     "api.acknowledge"}
# GET pages only admins may open (forms to change things, and lists that hold secrets or
# name people). Every other GET endpoint must be in EVERYONE_READS.
ADMIN_PAGES = {"keys.index", "users.index", "audit.index", "alert_channels.index",
               "alert_channels.edit", "alert_rules.edit", "modbus.edit",
               "device_accounts.index"}
EVERYONE_READS = {
    "auth.login", "static", "account.index", "devices.index", "devices.snapshot",
    "rejects.index", "charts.history", "charts.aggregates", "modbus.index",
    "modbus.recloser", "alerts.index", "alerts.snapshot", "alerts.count", "alerts.detail",
    "alert_rules.index", "commands.page", "api_docs.docs", "api_docs.asset",
    "api_docs.static", "api.openapi_json", "api.devices", "api.attributes", "api.latest",
    "api.series", "api.aggregates", "api.export_csv", "api.list_rejects",
    "api.list_alerts", "api.one_alert",
    "health.healthz", "system.index", "system.figures_fragment", "metrics.metrics",
}
READ_METHODS = {"GET", "HEAD", "OPTIONS"}

ARGUMENT = re.compile(r"<(?:(\w+)(?:\(([^)]*)\))?:)?(\w+)>")
PLACEHOLDERS = {None: "x", "default": "x", "string": "x", "int": "1", "float": "1.5",
                "path": "x/y", "uuid": "00000000-0000-0000-0000-000000000001"}


def placeholder(match):
    converter, args = match.group(1), match.group(2)
    if converter == "any":  # any(a, b): one of its words
        return args.split(",")[0].strip().strip("'\"")
    assert converter in PLACEHOLDERS, f"add a placeholder for the <{converter}:...> converter"
    return PLACEHOLDERS[converter]


def routes(app):
    """Every (endpoint, method, path) of the app, with placeholders for the variables,
    each checked to reach its own endpoint."""
    adapter = app.url_map.bind("localhost")
    found = []
    for rule in app.url_map.iter_rules():
        path = ARGUMENT.sub(placeholder, rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            assert adapter.match(path, method=method)[0] == rule.endpoint, (rule, path)
            found.append((rule.endpoint, method, path))
    return found


def send(client, method, path, token):
    """The request a browser's form (or the API's script) would send, token included."""
    return client.open(path, method=method, data={"csrf_token": token},
                       headers={"X-CSRFToken": token})


def is_login_redirect(response):
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_only_the_documented_endpoints_are_public():
    assert PUBLIC_ENDPOINTS == PUBLIC


def test_every_route_needs_a_login_or_a_key(app, client):
    """No session, no key: 401 (the API) or the login page, on every route and method but
    the public ones. The CSRF token is sent (anyone can get one from /login), so that it is
    the login that refuses, not the token check."""
    token = csrf_token(client, "/login")
    checked = 0
    for endpoint, method, path in routes(app):
        if endpoint in PUBLIC:
            continue
        response = send(client, method, path, token)
        assert response.status_code == 401 or is_login_redirect(response), \
            (endpoint, method, path, response.status_code)
        checked += 1
    assert checked > 40  # the app's routes, not an empty map


def test_every_get_endpoint_has_declared_rights(app):
    """A new page must say who may read it (and if only admins, it is checked below)."""
    gets = {endpoint for endpoint, method, _ in routes(app) if method == "GET"}
    assert gets - ADMIN_PAGES - EVERYONE_READS == set(), "declare who may read these"
    assert ADMIN_PAGES & EVERYONE_READS == set()
    stale = (ADMIN_PAGES | EVERYONE_READS) - gets
    assert stale == set(), "these endpoints no longer exist"


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_non_admins_get_403_on_every_admin_action(app, db, role):
    """Every request that changes something (any method but GET) is an admin's, except the
    few listed above; so is every admin page. Checked before the input: placeholder ids
    that exist nowhere still get 403, never 404."""
    client = add_user(app, db, role)
    token = csrf_token(client, "/")
    allowed = VIEWER_MAY_SEND | (OPERATOR_MAY_SEND if role == "operator" else set())
    for endpoint, method, path in routes(app):
        if endpoint in allowed or (method in READ_METHODS and endpoint not in ADMIN_PAGES):
            continue
        response = send(client, method, path, token)
        assert response.status_code == 403, (endpoint, method, path, response.status_code)
    assert db.execute("SELECT count(*) AS n FROM audit_log WHERE action <> 'login.succeeded'"
                      ).fetchone()["n"] == 0


def test_operators_may_do_what_viewers_may_not(app, db):
    """The operator's own actions are refused to a viewer and allowed to an operator (who
    then meets the input checks: nothing exists at the placeholder paths)."""
    viewer, operator = add_user(app, db, "viewer"), add_user(app, db, "operator")
    tokens = {viewer: csrf_token(viewer, "/"), operator: csrf_token(operator, "/")}
    sends = [(e, m, p) for e, m, p in routes(app) if e in OPERATOR_MAY_SEND]
    assert {e for e, _, _ in sends} == OPERATOR_MAY_SEND
    for endpoint, method, path in sends:
        assert send(viewer, method, path, tokens[viewer]).status_code == 403, endpoint
        response = send(operator, method, path, tokens[operator])
        assert response.status_code not in (401, 403) and not is_login_redirect(response), \
            (endpoint, response.status_code)


def test_admins_are_refused_nothing(app, logged_in):
    """The other side of the 403s above: the same requests from an admin pass the rights
    checks (and then meet the input checks)."""
    token = csrf_token(logged_in, "/")
    for endpoint, method, path in routes(app):
        if endpoint in VIEWER_MAY_SEND:  # logging out here would end the admin's session
            continue
        response = send(logged_in, method, path, token)
        assert response.status_code not in (401, 403) and not is_login_redirect(response), \
            (endpoint, method, path, response.status_code)


def test_every_change_without_the_csrf_token_gets_400(make_app, db):
    """Every form post and every session write of the API, with a valid session but no
    token: 400, and nothing happens."""
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    assert login(client).status_code == 302
    checked = 0
    for endpoint, method, path in routes(app):
        if method in READ_METHODS:
            continue
        response = client.open(path, method=method, data={"username": "x", "role": "viewer"})
        assert response.status_code == 400, (endpoint, method, path, response.status_code)
        text = response.get_data(as_text=True)
        assert "CSRF" in text or "form expired" in text, (endpoint, text[:200])
        checked += 1
    assert checked > 20
    assert client.get("/").status_code == 200  # still logged in: /logout was refused too
    assert db.execute("SELECT count(*) AS n FROM audit_log WHERE action <> 'login.succeeded'"
                      ).fetchone()["n"] == 0


def no_secret_in(rows, *secrets):
    """Every column of every row, as text (bytes as hex and as Latin-1), holds no secret."""
    for row in rows:
        for column, value in row.items():
            texts = [str(value)]
            if isinstance(value, (bytes, memoryview)):
                texts += [bytes(value).hex(), bytes(value).decode("latin-1")]
            for secret in secrets:
                assert not any(secret in text for text in texts), (column, "holds a secret")


def test_passwords_and_api_keys_are_not_stored_in_clear(app, logged_in, db):
    password = "a known password for carol"
    response = logged_in.post("/users", data={"csrf_token": csrf_token(logged_in, "/users"),
                                              "username": "carol", "role": "operator",
                                              "password": password})
    assert response.status_code == 201
    key = NEW_KEY.search(create_key(logged_in, name="grafana").get_data(as_text=True)).group(1)
    assert login(app.test_client(), "carol", password).status_code == 302  # both work
    assert logged_in.get("/api/v1/devices", headers={"X-API-Key": key}).status_code == 200

    users = db.execute("SELECT * FROM users").fetchall()
    keys = db.execute("SELECT * FROM api_keys").fetchall()
    log = db.execute("SELECT * FROM audit_log").fetchall()
    no_secret_in(users + keys + log, password, ADMIN_PASSWORD, key, key[12:])
    carol = next(u for u in users if u["username"] == "carol")
    assert carol["password_hash"].startswith("$argon2id$")
    assert hasher.verify(carol["password_hash"], password)
    admin = next(u for u in users if u["username"] != "carol")
    assert hasher.verify(admin["password_hash"], ADMIN_PASSWORD)
    assert bytes(keys[0]["key_hash"]) == hashlib.sha256(key.encode()).digest()


def test_the_live_stream_needs_a_login_not_a_key(app, logged_in, client):
    """Socket.IO, both namespaces: refused without a login, and an API key does not open
    it (keys are for /api/v1 only); every logged-in role may follow it."""
    key = NEW_KEY.search(create_key(logged_in).get_data(as_text=True)).group(1)
    for namespace in ("/", live.ALERTS_NAMESPACE):
        assert not socketio.test_client(app, namespace=namespace).is_connected(namespace)
        with_key = socketio.test_client(app, namespace=namespace,
                                        headers={"Authorization": f"Bearer {key}"})
        assert not with_key.is_connected(namespace)
        assert socketio.test_client(app, namespace=namespace,
                                    flask_test_client=logged_in).is_connected(namespace)


def test_live_streams_end_with_the_users_access(app, logged_in, db):
    """The login is checked when a socket opens: deleting a user, or resetting their
    password, closes their open sockets (both namespaces), and only theirs."""
    namespaces = ("/", live.ALERTS_NAMESPACE)
    sockets = {}
    for role in ("viewer", "operator"):
        client = add_user(app, db, role)
        sockets[role] = [socketio.test_client(app, namespace=ns, flask_test_client=client)
                         for ns in namespaces]
    admin_socket = socketio.test_client(app, flask_test_client=logged_in)

    def connected(role):
        return [s.is_connected(ns) for s, ns in zip(sockets[role], namespaces)]

    ids = {r["username"]: r["id"] for r in db.execute("SELECT id, username FROM users")}
    token = csrf_token(logged_in, "/users")
    logged_in.post(f"/users/{ids['viewer']}/delete", data={"csrf_token": token})
    assert connected("viewer") == [False, False]
    assert connected("operator") == [True, True]
    logged_in.post(f"/users/{ids['operator']}/password", data={"csrf_token": token})
    assert connected("operator") == [False, False]
    assert admin_socket.is_connected()
