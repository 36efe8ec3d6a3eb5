"""The /alerts pages: what needs attention, each alert's history, and acknowledgements.
Alerts and their events are inserted as Node-RED's octopus-alerts node writes them."""
import re
from datetime import datetime, timedelta, timezone

import pytest

from octopus_portal.alerts import alert_state
from .helpers import add_user, csrf_token, login

NOW = datetime.now(timezone.utc).replace(microsecond=0)
ROW = re.compile(r'<tr data-testid="alert" data-alert-id="(\d+)" data-state="(\w+)"')


def add_rule(db, **columns):
    """Store a rule as the rules page would; a threshold rule unless told otherwise."""
    rule = {"name": "Server room too hot", "kind": "threshold", "devices": "oficina/servidores/+",
            "attribute": "temperatura", "condition": "above", "high": 30.0,
            "severity": "warning", "message": "{rule}: {device} {attribute} is {value}",
            **columns}
    return db.execute(f"INSERT INTO alert_rules ({', '.join(rule)}) VALUES"
                      f" ({', '.join(['%s'] * len(rule))}) RETURNING id",
                      list(rule.values())).fetchone()["id"]


def raise_alert(db, rule_id=None, device="servidor1", attribute="temperatura",
                minutes_ago=10, **columns):
    """An alert and its 'raised' event, as Node-RED writes them; its id."""
    alert = {"rule_id": rule_id, "rule_name": "Server room too hot", "site": "oficina",
             "room": "servidores", "device": device, "attribute": attribute,
             "severity": "warning", "message": f"{device} {attribute} is 31.5",
             "raised_at": NOW - timedelta(minutes=minutes_ago), "raised_value": "31.5",
             **columns}
    alert_id = db.execute(f"INSERT INTO alerts ({', '.join(alert)}) VALUES"
                          f" ({', '.join(['%s'] * len(alert))}) RETURNING id",
                          list(alert.values())).fetchone()["id"]
    db.execute("INSERT INTO alert_events (alert_id, at, kind, value) VALUES (%s, %s, 'raised',"
               " %s)", (alert_id, alert["raised_at"], alert["raised_value"]))
    return alert_id


def four_alerts(db):
    """One alert in each state: active, acknowledged, cleared unacknowledged, closed."""
    rule = add_rule(db)
    return {
        "active": raise_alert(db, rule, "servidor1", minutes_ago=5),
        "acknowledged": raise_alert(db, rule, "servidor2", minutes_ago=20, acked_by="olga",
                                    acked_at=NOW - timedelta(minutes=15)),
        "cleared": raise_alert(db, rule, "servidor3", minutes_ago=10,
                               cleared_at=NOW - timedelta(minutes=2), cleared_value="28.0",
                               flapping=True),
        "closed": raise_alert(db, rule, "servidor4", minutes_ago=30, acked_by="olga",
                              acked_at=NOW - timedelta(minutes=29),
                              cleared_at=NOW - timedelta(minutes=25), cleared_value="27.5"),
    }


def sections(page):
    """[(id, state)] of the rows in 'needs attention' and in 'recently closed'."""
    attention, closed = page.split('data-testid="closed"')
    rows = (lambda html: [(int(i), s) for i, s in ROW.findall(html)])
    return rows(attention), rows(closed.split('id="template-alert"')[0])


def ack(client, alert_id, token_page="/alerts", **form):
    return client.post(f"/alerts/{alert_id}/ack",
                       data={"csrf_token": csrf_token(client, token_page), **form})


def test_needs_attention_lists_open_and_unacknowledged_alerts_newest_first(logged_in, db):
    ids = four_alerts(db)
    page = logged_in.get("/alerts").get_data(as_text=True)
    attention, closed = sections(page)
    assert attention == [(ids["active"], "active"), (ids["cleared"], "cleared"),
                         (ids["acknowledged"], "acknowledged")]
    assert closed == [(ids["closed"], "cleared")]
    assert 'data-testid="attention-count">3<' in page
    for shown in ("28.0", "31.5", "servidor3", "oficina/servidores/servidor2", "olga",
                  ">flapping<", "Server room too hot"):
        assert shown in page
    # the nav badge counts them on every page, and the count follows over JSON
    assert re.search(r'data-testid="alerts-badge"[^>]*>3</span>',
                     logged_in.get("/rejects").get_data(as_text=True))
    assert logged_in.get("/alerts/count.json").get_json() == {"needs_attention": 3}
    snapshot = logged_in.get("/alerts/snapshot.json").get_json()
    assert [a["id"] for a in snapshot["attention"]] == [i for i, _ in attention]
    assert [a["state"] for a in snapshot["closed"]] == ["cleared"]


def test_no_alerts_no_badge(logged_in):
    page = logged_in.get("/alerts").get_data(as_text=True)
    assert re.search(r'data-testid="alerts-badge"[^>]*hidden>0</span>', page)
    assert re.search(r'data-testid="attention-empty"\s*>', page)


def test_alert_state_is_the_published_json(db):
    alert_id = four_alerts(db)["cleared"]
    row = db.execute("SELECT * FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    state = alert_state(row)
    assert set(state) == {"id", "rule_id", "rule_name", "site", "room", "device", "attribute",
                          "severity", "message", "state", "raised_at", "raised_value",
                          "acked_at", "acked_by", "cleared_at", "cleared_value", "flapping"}
    assert state["state"] == "cleared" and state["acked_at"] is None and state["flapping"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", state["raised_at"])


def test_operator_acknowledges_once_with_name_time_and_event(app, db):
    alert_id = four_alerts(db)["active"]
    operator = add_user(app, db, "operator")
    response = ack(operator, alert_id)
    assert response.status_code == 302 and response.headers["Location"] == "/alerts"
    row = db.execute("SELECT acked_by, acked_at, now() - acked_at < interval '1 minute' AS"
                     " recent FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert row["acked_by"] == "operator" and row["recent"]
    page = operator.get("/alerts").get_data(as_text=True)
    assert f"Alert {alert_id} acknowledged." in page
    assert (alert_id, "acknowledged") in sections(page)[0]

    assert ack(operator, alert_id).status_code == 302  # twice: harmless, and says so
    assert "already acknowledged by operator" in operator.get("/alerts").get_data(as_text=True)
    events = db.execute("SELECT kind, actor, at FROM alert_events WHERE alert_id = %s"
                        " ORDER BY at, id", (alert_id,)).fetchall()
    assert [(e["kind"], e["actor"]) for e in events] == [("raised", None),
                                                         ("acknowledged", "operator")]
    assert events[1]["at"] == row["acked_at"]  # one transaction


def test_acknowledging_a_cleared_alert_closes_it(logged_in, db):
    alert_id = four_alerts(db)["cleared"]
    assert ack(logged_in, alert_id).status_code == 302
    attention, closed = sections(logged_in.get("/alerts").get_data(as_text=True))
    assert alert_id not in [i for i, _ in attention] and (alert_id, "cleared") in closed
    assert logged_in.get("/alerts/count.json").get_json() == {"needs_attention": 2}


def test_without_mqtt_the_acknowledgement_stands_and_the_page_says_so(logged_in, db):
    alert_id = four_alerts(db)["active"]
    ack(logged_in, alert_id)
    page = logged_in.get("/alerts").get_data(as_text=True)
    assert "Other pages will show it after a reload" in page
    assert db.execute("SELECT acked_by FROM alerts WHERE id = %s",
                      (alert_id,)).fetchone()["acked_by"] == "admin"


def test_viewer_sees_alerts_but_no_button_and_cannot_acknowledge(app, db):
    alert_id = four_alerts(db)["active"]
    viewer = add_user(app, db, "viewer")
    page = viewer.get("/alerts").get_data(as_text=True)
    assert (alert_id, "active") in sections(page)[0]
    assert 'data-testid="alert-ack"' not in page
    assert 'data-testid="alert-ack"' not in viewer.get(f"/alerts/{alert_id}").get_data(as_text=True)
    assert 'data-testid="alert-channels-link"' not in page
    assert ack(viewer, alert_id).status_code == 403
    assert db.execute("SELECT acked_at FROM alerts WHERE id = %s",
                      (alert_id,)).fetchone()["acked_at"] is None


def test_acknowledging_needs_the_csrf_token_and_an_existing_alert(logged_in, db):
    alert_id = four_alerts(db)["active"]
    assert logged_in.post(f"/alerts/{alert_id}/ack").status_code == 400
    assert db.execute("SELECT acked_at FROM alerts WHERE id = %s",
                      (alert_id,)).fetchone()["acked_at"] is None
    assert ack(logged_in, 999999).status_code == 404


def test_alert_pages_need_a_login(client, db):
    alert_id = four_alerts(db)["active"]
    for path in ("/alerts", f"/alerts/{alert_id}", "/alerts/count.json", "/alerts/rules"):
        assert client.get(path).headers["Location"].startswith("/login"), path


def test_the_detail_page_shows_the_history_in_order(logged_in, db):
    alert_id = four_alerts(db)["closed"]
    t = NOW - timedelta(minutes=30)
    # inserted out of order: the page orders by time
    for minutes, kind, value, actor, detail in (
            (5, "cleared", "27.5", None, None),
            (0.01, "notified", None, "ops e-mail", "sent to ops@example.com"),
            (0.02, "suppressed", None, "ops webhook", "at most one per 300 s"),
            (2, "flapping", None, None, "raised 4 times in 600 s"),
            (1, "acknowledged", None, "olga", None)):
        db.execute("INSERT INTO alert_events (alert_id, at, kind, value, actor, detail)"
                   " VALUES (%s, %s, %s, %s, %s, %s)",
                   (alert_id, t + timedelta(minutes=minutes), kind, value, actor, detail))
    page = logged_in.get(f"/alerts/{alert_id}").get_data(as_text=True)
    assert re.findall(r'data-testid="alert-event" data-kind="(\w+)"', page) == [
        "raised", "notified", "suppressed", "acknowledged", "flapping", "cleared"]
    for shown in ("ops e-mail", "sent to ops@example.com", "raised 4 times in 600 s",
                  "27.5", "olga", 'data-testid="alert-state">cleared<'):
        assert shown in page
    assert 'data-testid="alert-ack"' not in page  # already acknowledged
    assert logged_in.get("/alerts/999999").status_code == 404


def test_acknowledging_from_the_detail_page_returns_there(logged_in, db):
    alert_id = four_alerts(db)["active"]
    page = logged_in.get(f"/alerts/{alert_id}").get_data(as_text=True)
    assert 'data-testid="alert-ack"' in page
    response = ack(logged_in, alert_id, f"/alerts/{alert_id}", next=f"/alerts/{alert_id}")
    assert response.headers["Location"] == f"/alerts/{alert_id}"
    response = ack(logged_in, alert_id, next="https://elsewhere.example/")
    assert response.headers["Location"] == "/"  # never off-site


@pytest.mark.parametrize("role,sees_channels", [("admin", True), ("operator", False)])
def test_rules_and_channels_are_linked_from_alerts(app, db, role, sees_channels):
    client = add_user(app, db, role) if role != "admin" else app.test_client()
    if role == "admin":
        login(client)
    page = client.get("/alerts").get_data(as_text=True)
    assert 'data-testid="alert-rules-link"' in page
    assert ('data-testid="alert-channels-link"' in page) is sees_channels
    assert 'data-testid="nav-alerts"' in page
