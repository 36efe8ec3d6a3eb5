"""/alerts/channels: admins (only) manage where notifications go: e-mail, webhook, MQTT."""
import pytest

from octopus_portal.alert_channels import check_channel

from .helpers import csrf_token
from .test_portal_alerts import add_user

EMAIL = {"name": "On-call e-mail", "kind": "email",
         "target": "ops@example.com,  oncall@example.org", "severities": ["critical"],
         "enabled": "on"}


def post(client, path="/alerts/channels", **changes):
    data = {**EMAIL, **changes, "csrf_token": csrf_token(client, "/alerts/channels")}
    return client.post(path, data={k: v for k, v in data.items() if v is not None})


def channels(db):
    return db.execute("SELECT name, kind, target, severities, enabled FROM"
                      " notification_channels ORDER BY id").fetchall()


def test_admin_adds_a_channel_of_each_kind(logged_in, db):
    assert post(logged_in).status_code == 302
    assert post(logged_in, name="Chat", kind="webhook",
                target="https://hooks.example.com/services/T0/B0?x=1",
                severities=["warning", "critical"]).status_code == 302
    assert post(logged_in, name="Bus", kind="mqtt", target="octopus/notifications/ops",
                severities=["info", "warning", "critical"], enabled=None).status_code == 302
    assert channels(db) == [
        {"name": "On-call e-mail", "kind": "email",
         "target": "ops@example.com, oncall@example.org", "severities": ["critical"],
         "enabled": True},
        {"name": "Chat", "kind": "webhook",
         "target": "https://hooks.example.com/services/T0/B0?x=1",
         "severities": ["warning", "critical"], "enabled": True},
        {"name": "Bus", "kind": "mqtt", "target": "octopus/notifications/ops",
         "severities": ["info", "warning", "critical"], "enabled": False},
    ]
    page = logged_in.get("/alerts/channels").get_data(as_text=True)
    assert "hooks.example.com/services/T0/B0" in page and "octopus/notifications/ops" in page


@pytest.mark.parametrize("changes,field,words", [
    ({"name": ""}, "name", "1 to 100"),
    ({"kind": "sms"}, "kind", "one of email, webhook, mqtt"),
    ({"target": ""}, "target", "1 to 1000 characters"),
    ({"target": "x" * 1001}, "target", "1 to 1000 characters"),
    ({"target": "ops@example.com\nBcc: x@y.org"}, "target", "no control characters"),
    ({"target": "ops"}, "target", "each address like name@example.com"),
    ({"target": "ops@localhost"}, "target", "each address"),
    ({"target": "ops@example.com;b@example.com"}, "target", "separated by commas"),
    ({"target": "ops@example.com,"}, "target", "each address"),
    ({"target": "a b@example.com"}, "target", "each address"),
    ({"kind": "webhook", "target": "ftp://example.com/x"}, "target", "http:// or https://"),
    ({"kind": "webhook", "target": "https://"}, "target", "with a host"),
    ({"kind": "webhook", "target": "example.com/hook"}, "target", "http:// or https://"),
    ({"kind": "webhook", "target": "https://example.com:99999/"}, "target", "http://"),
    ({"kind": "webhook", "target": "https://exa mple.com/"}, "target", "http://"),
    ({"kind": "mqtt", "target": "octopus/notifications/+"}, "target", "no '+' or '#'"),
    ({"kind": "mqtt", "target": "alarms/#"}, "target", "no '+' or '#'"),
    ({"kind": "mqtt", "target": "$SYS/x"}, "target", "under octopus/"),
    ({"kind": "mqtt", "target": "oficina/servidores/servidor1/alarma"}, "target",
     "the ingest would take a notification for a reading"),
    ({"kind": "mqtt", "target": "octopus//x"}, "target", "without empty levels"),
    ({"kind": "mqtt", "target": "octopus/live"}, "target", "the platform's own"),
    ({"kind": "mqtt", "target": "octopus/alerts/ops"}, "target", "the platform's own"),
    ({"severities": []}, "severities", "tick at least one"),
    ({"severities": ["critical", "fatal"]}, "severities", "tick at least one"),
])
def test_each_bad_field_has_its_message(changes, field, words):
    row, problems = check_channel({**EMAIL, "enabled": True, **changes})
    assert list(problems) == [field] and words in problems[field]


def test_a_bad_channel_is_refused_with_a_message_per_field_and_nothing_stored(logged_in, db):
    response = post(logged_in, kind="webhook", target="ftp://x", severities=[])
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and channels(db) == []
    assert "Target: an http:// or https:// URL" in page
    assert "Severities: tick at least one" in page
    assert 'value="ftp://x"' in page


def test_admin_changes_disables_and_deletes_a_channel(logged_in, db):
    post(logged_in)
    channel_id = db.execute("SELECT id FROM notification_channels").fetchone()["id"]
    before = db.execute("SELECT updated_at FROM notification_channels").fetchone()["updated_at"]
    assert 'value="ops@example.com, oncall@example.org"' in logged_in.get(
        f"/alerts/channels/{channel_id}").get_data(as_text=True)
    assert post(logged_in, f"/alerts/channels/{channel_id}", target="noc@example.com",
                severities=["warning"]).status_code == 302
    row = db.execute("SELECT target, severities, updated_at FROM notification_channels"
                     ).fetchone()
    assert (row["target"], row["severities"]) == ("noc@example.com", ["warning"])
    assert row["updated_at"] > before
    assert post(logged_in, f"/alerts/channels/{channel_id}", target="nope").status_code == 400

    token = csrf_token(logged_in, "/alerts/channels")
    logged_in.post(f"/alerts/channels/{channel_id}/enabled", data={"csrf_token": token})
    assert channels(db)[0]["enabled"] is False
    logged_in.post(f"/alerts/channels/{channel_id}/enabled",
                   data={"csrf_token": token, "enabled": "on"})
    assert channels(db)[0]["enabled"] is True
    assert logged_in.post(f"/alerts/channels/{channel_id}/delete",
                          data={"csrf_token": token}).status_code == 302
    assert channels(db) == []
    assert logged_in.get(f"/alerts/channels/{channel_id}").status_code == 404


def test_only_admins_see_or_change_channels(app, logged_in, db):
    post(logged_in)
    channel_id = db.execute("SELECT id FROM notification_channels").fetchone()["id"]
    operator = add_user(app, db, "operator")
    token = csrf_token(operator, "/alerts")
    assert operator.get("/alerts/channels").status_code == 403
    assert operator.get(f"/alerts/channels/{channel_id}").status_code == 403
    for path in ("/alerts/channels", f"/alerts/channels/{channel_id}",
                 f"/alerts/channels/{channel_id}/enabled",
                 f"/alerts/channels/{channel_id}/delete"):
        assert operator.post(path, data={**EMAIL, "csrf_token": token}).status_code == 403
    assert len(channels(db)) == 1 and channels(db)[0]["enabled"] is True
    assert logged_in.post("/alerts/channels", data=EMAIL).status_code == 400  # no CSRF token
