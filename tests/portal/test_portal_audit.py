"""The audit log: logins, logouts and every admin change leave a row (who, what, to what,
from where); admins read it on /audit, filtered and a page at a time; nobody else does."""
import re

import pytest

from octopus_portal import audit

from .helpers import ADMIN_USER, add_user, csrf_token, login
from .test_api_keys import NEW_KEY, create as create_key
from .test_portal_alerts_channels import post as post_channel
from .test_portal_alerts_rules import post as post_rule
from .test_portal_modbus import add as add_modbus


def rows(db, action_prefix=""):
    return db.execute("SELECT actor, actor_id, action, subject, detail, host(address) AS address"
                      " FROM audit_log WHERE action LIKE %s ORDER BY id",
                      (action_prefix + "%",)).fetchall()


def actions(db, action_prefix):
    return [(r["actor"], r["action"], r["subject"]) for r in rows(db, action_prefix)]


def only_id(db, table):
    return db.execute(f"SELECT id FROM {table}").fetchone()["id"]


def test_logins_and_logouts_are_recorded_without_the_password(client, db):
    assert login(client, password="a wrong guess").status_code == 200
    assert login(client, username="nobody", password="another guess").status_code == 200
    assert login(client).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    admin_id = db.execute("SELECT id FROM users").fetchone()["id"]
    assert rows(db) == [
        {"actor": None, "actor_id": None, "action": "login.failed", "subject": None,
         "detail": {"username": ADMIN_USER}, "address": "127.0.0.1"},
        {"actor": None, "actor_id": None, "action": "login.failed", "subject": None,
         "detail": {"username": "nobody"}, "address": "127.0.0.1"},
        {"actor": ADMIN_USER, "actor_id": admin_id, "action": "login.succeeded",
         "subject": None, "detail": {}, "address": "127.0.0.1"},
        {"actor": ADMIN_USER, "actor_id": admin_id, "action": "logout", "subject": None,
         "detail": {}, "address": "127.0.0.1"},
    ]
    text = str(db.execute("SELECT * FROM audit_log").fetchall())
    assert "guess" not in text


def test_api_key_changes_are_recorded(logged_in, db):
    key = NEW_KEY.search(create_key(logged_in, name="grafana").get_data(as_text=True)).group(1)
    key_id = only_id(db, "api_keys")
    logged_in.post(f"/keys/{key_id}/revoke", data={"csrf_token": csrf_token(logged_in, "/keys")})
    assert actions(db, "key.") == [(ADMIN_USER, "key.created", "grafana"),
                                   (ADMIN_USER, "key.revoked", "grafana")]
    created, revoked = rows(db, "key.")
    assert created["detail"] == {"key_id": key_id, "prefix": key[:12], "scopes": ["read"],
                                 "site": None}
    assert revoked["detail"] == {"key_id": key_id, "prefix": key[:12]}
    assert key not in str(rows(db))


def test_alert_rule_changes_are_recorded(logged_in, db):
    assert post_rule(logged_in).status_code == 302
    rule_id = only_id(db, "alert_rules")
    assert post_rule(logged_in, f"/alerts/rules/{rule_id}", high="35").status_code == 302
    token = csrf_token(logged_in, "/alerts/rules")
    logged_in.post(f"/alerts/rules/{rule_id}/enabled", data={"csrf_token": token})
    logged_in.post(f"/alerts/rules/{rule_id}/delete", data={"csrf_token": token})
    name = "Server room too hot"
    assert actions(db, "rule.") == [(ADMIN_USER, "rule.created", name),
                                    (ADMIN_USER, "rule.changed", name),
                                    (ADMIN_USER, "rule.changed", name),
                                    (ADMIN_USER, "rule.deleted", name)]
    created, changed, disabled, deleted = [r["detail"] for r in rows(db, "rule.")]
    assert created["id"] == rule_id and created["high"] == 30.0
    assert changed == {"id": rule_id, "changes": {"high": [30.0, 35.0]}}
    assert disabled == {"id": rule_id, "enabled": False}
    assert deleted == {"id": rule_id, "alerts_cleared": 0}


def test_channel_changes_are_recorded_without_their_target(logged_in, db):
    hook = "https://hooks.example.com/services/T0/B0?token=s3cr3t"
    assert post_channel(logged_in, name="Chat", kind="webhook", target=hook).status_code == 302
    channel_id = only_id(db, "notification_channels")
    assert post_channel(logged_in, f"/alerts/channels/{channel_id}", name="Chat", kind="webhook",
                        target=hook + "2").status_code == 302
    token = csrf_token(logged_in, "/alerts/channels")
    logged_in.post(f"/alerts/channels/{channel_id}/enabled", data={"csrf_token": token})
    logged_in.post(f"/alerts/channels/{channel_id}/delete", data={"csrf_token": token})
    assert actions(db, "channel.") == [(ADMIN_USER, "channel.created", "Chat"),
                                       (ADMIN_USER, "channel.changed", "Chat"),
                                       (ADMIN_USER, "channel.changed", "Chat"),
                                       (ADMIN_USER, "channel.deleted", "Chat")]
    changed = rows(db, "channel.changed")[0]["detail"]
    assert changed == {"id": channel_id, "changes": {}, "target_changed": True}
    assert "s3cr3t" not in str(rows(db))  # a webhook's token outlives nothing here


def test_modbus_device_changes_are_recorded(logged_in, db):
    assert add_modbus(logged_in).status_code == 302
    device_id = only_id(db, "modbus_devices")
    token = csrf_token(logged_in, "/modbus")
    form = {"site": "planta", "room": "subestacion", "name": "reconectador1",
            "host": "192.168.1.21", "port": "502", "unit_id": "1", "profile": "osm27",
            "interval_s": "0.5", "enabled": "on", "csrf_token": token}
    assert logged_in.post(f"/modbus/{device_id}", data=form).status_code == 302
    assert add_modbus(logged_in).status_code == 400  # a duplicate: refused, not audited
    logged_in.post(f"/modbus/{device_id}/delete", data={"csrf_token": token})
    subject = "planta/subestacion/reconectador1"
    assert actions(db, "modbus_device.") == [(ADMIN_USER, "modbus_device.added", subject),
                                             (ADMIN_USER, "modbus_device.changed", subject),
                                             (ADMIN_USER, "modbus_device.deleted", subject)]
    added, changed, deleted = [r["detail"] for r in rows(db, "modbus_device.")]
    assert added["host"] == "192.168.1.20" and added["poll_interval_ms"] == 500
    assert changed == {"id": device_id, "changes": {"host": ["192.168.1.20", "192.168.1.21"]}}
    assert deleted == {"id": device_id}


def test_a_refused_change_leaves_no_row(app, db):
    viewer = add_user(app, db, "viewer")
    token = csrf_token(viewer, "/")
    assert viewer.post("/users", data={"csrf_token": token, "username": "x", "role": "admin",
                                       "password": ""}).status_code == 403
    assert [r["action"] for r in rows(db)] == ["login.succeeded"]


def test_record_refuses_a_malformed_action(app):
    with app.test_request_context(), pytest.raises(ValueError, match="dots"):
        audit.record("User Created")


def test_only_admins_read_the_audit_log(app, logged_in, db):
    for role in ("operator", "viewer"):
        assert add_user(app, db, role).get("/audit").status_code == 403
    page = logged_in.get("/audit").get_data(as_text=True)
    logged = re.findall(r'data-testid="audit-row" data-action="([^"]+)"', page)
    assert logged == ["login.succeeded"] * 3  # newest first: the viewer's, the operator's...
    assert "127.0.0.1" in page


def test_the_audit_log_filters_by_action_prefix_and_user(app, logged_in, db):
    add_user(app, db, "viewer")
    login(app.test_client(), "viewer", "wrong password")
    client = app.test_client()
    logged_in.post("/logout", data={"csrf_token": csrf_token(logged_in, "/")})
    login(client)

    def shown(**query):
        page = client.get("/audit", query_string=query).get_data(as_text=True)
        return re.findall(r'data-testid="audit-row" data-action="([^"]+)"', page)

    assert shown(action="login") == ["login.succeeded", "login.failed", "login.succeeded",
                                     "login.succeeded"]  # not "logout": a prefix of words
    assert shown(action="login.failed") == ["login.failed"]
    assert shown(action="log") == []
    assert shown(action="logout") == ["logout"]
    assert shown(user="viewer") == ["login.succeeded"]
    assert shown(user=ADMIN_USER, action="login") == ["login.succeeded", "login.succeeded"]
    assert shown(action="100%_") == []  # LIKE's wildcards are plain characters here


def test_the_audit_log_is_read_a_page_at_a_time(logged_in, db, monkeypatch):
    monkeypatch.setattr(audit, "PAGE_SIZE", 2)
    for n in range(4):
        db.execute("INSERT INTO audit_log (action, subject) VALUES ('test.entry', %s)", (n,))
    page = logged_in.get("/audit?action=test").get_data(as_text=True)
    assert re.findall(r"<td>(\d)</td>", page) == ["3", "2"]
    older = re.search(r'href="([^"]+)"\s+data-testid="audit-older"', page).group(1)
    page = logged_in.get(older.replace("&amp;", "&")).get_data(as_text=True)
    assert re.findall(r"<td>(\d)</td>", page) == ["1", "0"]
    assert 'data-testid="audit-older"' not in page


@pytest.mark.parametrize("before", ["²", "-1", "9" * 30, "x"])
def test_a_bad_page_mark_shows_the_newest_page(logged_in, before):
    response = logged_in.get("/audit", query_string={"before": before})
    assert response.status_code == 200
    assert 'data-action="login.succeeded"' in response.get_data(as_text=True)
