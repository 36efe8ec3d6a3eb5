"""/alerts/rules: admins add, change, enable, disable and delete alert rules; everyone
logged in reads them. Bad input is refused field by field and nothing is stored."""
import re

import pytest

from octopus_portal.alert_rule_checks import FIELDS, check_rule, devices_problem

from .helpers import csrf_token
from .test_portal_alerts import NOW, add_rule, add_user, raise_alert

THRESHOLD = {"kind": "threshold", "name": "Server room too hot",
             "devices": "oficina/servidores/+", "attribute": "temperatura",
             "condition": "above", "low": "", "high": "30", "hysteresis": "0.5",
             "on_delay_s": "10", "off_delay_s": "5", "severity": "critical",
             "message": "{rule}: {device} {attribute} = {value} {unit}", "enabled": "on"}
OFFLINE = {"kind": "offline", "name": "Device offline", "devices": "#",
           "on_delay_s": "30", "off_delay_s": "0", "severity": "warning",
           "message": "{device} is offline", "enabled": "on"}
STALE = {"kind": "stale", "name": "No humidity", "devices": "planta/#", "attribute": "+",
         "stale_after_s": "600", "off_delay_s": "", "severity": "info", "message": "",
         "enabled": "on"}
COLUMNS = ("name", "kind", "devices", "attribute", "condition", "low", "high", "hysteresis",
           "on_delay_s", "off_delay_s", "stale_after_s", "severity", "message", "enabled")


def post(client, path="/alerts/rules", form=THRESHOLD, **changes):
    data = {**form, **changes, "csrf_token": csrf_token(client, "/alerts/rules")}
    return client.post(path, data={k: v for k, v in data.items() if v is not None})


def rules(db):
    return db.execute(f"SELECT {', '.join(COLUMNS)} FROM alert_rules ORDER BY id").fetchall()


def test_admin_adds_a_rule_of_each_kind(logged_in, db):
    for form in (THRESHOLD, OFFLINE, STALE):
        assert post(logged_in, form=form).status_code == 302
    assert [tuple(r.values()) for r in rules(db)] == [
        ("Server room too hot", "threshold", "oficina/servidores/+", "temperatura", "above",
         None, 30.0, 0.5, 10.0, 5.0, None, "critical",
         "{rule}: {device} {attribute} = {value} {unit}", True),
        ("Device offline", "offline", "#", None, None, None, None, 0.0, 30.0, 0.0, None,
         "warning", "{device} is offline", True),
        ("No humidity", "stale", "planta/#", "+", None, None, None, 0.0, 0.0, 0.0, 600.0,
         "info", "", True),
    ]
    page = logged_in.get("/alerts/rules").get_data(as_text=True)
    tests = re.findall(r'data-testid="rule-test">([^<]*)<', page)
    assert tests == ["status is offline", "no reading of any attribute for 600 s",
                     "temperatura &gt; 30 (hysteresis 0.5)"]
    assert "raised after 10 s, cleared after 5 s" in page


@pytest.mark.parametrize("condition,low,high,stored", [
    ("below", "-5", "99", (-5.0, None)),  # a value the condition does not use is dropped
    ("outside", "18", "27", (18.0, 27.0)),
    ("inside", "1e3", "1e3", (1000.0, 1000.0)),
])
def test_each_condition_stores_the_limits_it_compares_with(logged_in, db, condition, low,
                                                           high, stored):
    assert post(logged_in, condition=condition, low=low, high=high).status_code == 302
    row = rules(db)[0]
    assert (row["condition"], row["low"], row["high"]) == (condition, *stored)


@pytest.mark.parametrize("form,changes,field,words", [
    (THRESHOLD, {"name": ""}, "name", "1 to 100"),
    (THRESHOLD, {"name": "x" * 101}, "name", "1 to 100"),
    (THRESHOLD, {"name": "tab\there"}, "name", "printable"),
    (THRESHOLD, {"devices": ""}, "devices", "an MQTT filter"),
    (THRESHOLD, {"devices": "x" * 401}, "devices", "1 to 400"),
    (THRESHOLD, {"devices": "oficina//+"}, "devices", "an empty level"),
    (THRESHOLD, {"devices": "oficina/servidores/"}, "devices", "an empty level"),
    (THRESHOLD, {"devices": "/oficina/+"}, "devices", "an empty level"),
    (THRESHOLD, {"devices": "oficina/#/servidor1"}, "devices", "'#' may only be the whole last"),
    (THRESHOLD, {"devices": "oficina/serv#"}, "devices", "'#' may only be the whole last"),
    (THRESHOLD, {"devices": "oficina/serv+/x"}, "devices", "'+' may only be a whole level"),
    (THRESHOLD, {"devices": "oficina/servidores"}, "devices", "3 levels"),
    (THRESHOLD, {"devices": "a/b/c/d"}, "devices", "3 levels"),
    (THRESHOLD, {"devices": "a/b/c/d/#"}, "devices", "3 levels"),
    (THRESHOLD, {"devices": "$SYS/b/c"}, "devices", "not a topic level"),
    (THRESHOLD, {"attribute": ""}, "attribute", "one attribute name"),
    (THRESHOLD, {"attribute": "temp/x"}, "attribute", "one attribute name"),
    (THRESHOLD, {"attribute": "status"}, "attribute", "use an offline rule"),
    (THRESHOLD, {"condition": "equals"}, "condition", "one of above, below, outside, inside"),
    (THRESHOLD, {"high": ""}, "high", "a number: 'above' compares with it"),
    (THRESHOLD, {"high": "hot"}, "high", "a number"),
    (THRESHOLD, {"high": "nan"}, "high", "a number"),
    (THRESHOLD, {"high": "1e999"}, "high", "a number"),
    (THRESHOLD, {"condition": "below", "low": ""}, "low", "a number: 'below'"),
    (THRESHOLD, {"condition": "outside", "low": "30", "high": "20"}, "high",
     "at least as much as Low"),
    (THRESHOLD, {"hysteresis": "-1"}, "hysteresis", "a number, 0 or more"),
    (THRESHOLD, {"condition": "outside", "low": "20", "high": "30", "hysteresis": "5.5"},
     "hysteresis", "at most half of High − Low"),
    (THRESHOLD, {"on_delay_s": "-1"}, "on_delay_s", "seconds from 0 to 86400"),
    (THRESHOLD, {"off_delay_s": "100000"}, "off_delay_s", "seconds from 0 to 86400"),
    (THRESHOLD, {"severity": "panic"}, "severity", "one of info, warning, critical"),
    (THRESHOLD, {"message": "{rule} {valor}"}, "message", "unknown placeholder {valor}"),
    (THRESHOLD, {"message": "x" * 501}, "message", "at most 500"),
    (OFFLINE, {"on_delay_s": "soon"}, "on_delay_s", "seconds"),
    (STALE, {"stale_after_s": ""}, "stale_after_s", "seconds from 1"),
    (STALE, {"stale_after_s": "0"}, "stale_after_s", "seconds from 1"),
    (STALE, {"attribute": "#"}, "attribute", "one attribute name"),
])
def test_each_bad_field_has_its_message(form, changes, field, words):
    values = {**{f: "" for f in FIELDS}, **form, **changes, "enabled": True}
    row, problems = check_rule(form["kind"], values)
    assert list(problems) == [field] and words in problems[field]


def test_a_bad_rule_is_refused_with_a_message_per_field_and_nothing_stored(logged_in, db):
    response = post(logged_in, devices="oficina//+", high="hot", message="{valor}")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and rules(db) == []
    for words in ("Devices: an empty level", "High: a number", "Message: unknown placeholder"):
        assert words in page
    assert "Not saved: 3 fields to correct." in page
    # the form comes back open with what was typed; the other kinds' forms stay closed
    assert re.search(r'<details class="rule-form" open>\s*<summary>New threshold rule', page)
    assert re.search(r'<details class="rule-form" >\s*<summary>New offline rule', page)
    assert 'value="oficina//+"' in page and 'value="hot"' in page
    assert post(logged_in, kind="sometimes").status_code == 400 and rules(db) == []


@pytest.mark.parametrize("devices", ["#", "+/+/+", "planta/#", "oficina/+/#",
                                     "oficina/servidores/servidor1/#", "oficina/+/servidor1",
                                     "oficina/servidores/servidor 1"])
def test_good_device_filters(devices):
    assert devices_problem(devices) is None


def test_admin_changes_disables_enables_and_deletes_a_rule(logged_in, db):
    post(logged_in)
    rule_id = db.execute("SELECT id FROM alert_rules").fetchone()["id"]
    before = db.execute("SELECT updated_at FROM alert_rules").fetchone()["updated_at"]
    page = logged_in.get(f"/alerts/rules/{rule_id}").get_data(as_text=True)
    assert 'value="oficina/servidores/+"' in page and 'value="0.5"' in page
    assert 'data-testid="rule-form-offline"' not in page  # a rule keeps its kind

    response = post(logged_in, f"/alerts/rules/{rule_id}", condition="outside", low="15",
                    high="28", kind="offline", enabled=None)
    assert response.status_code == 302
    row = db.execute("SELECT * FROM alert_rules").fetchone()
    assert (row["kind"], row["condition"], row["low"], row["high"], row["enabled"]) == \
        ("threshold", "outside", 15.0, 28.0, False)
    assert row["updated_at"] > before  # how Node-RED sees that the rule changed

    bad = post(logged_in, f"/alerts/rules/{rule_id}", high="x")
    assert bad.status_code == 400 and "High: a number" in bad.get_data(as_text=True)

    token = csrf_token(logged_in, "/alerts/rules")
    assert logged_in.post(f"/alerts/rules/{rule_id}/enabled",
                          data={"csrf_token": token, "enabled": "on"}).status_code == 302
    assert db.execute("SELECT enabled FROM alert_rules").fetchone()["enabled"] is True
    assert logged_in.post(f"/alerts/rules/{rule_id}/enabled",
                          data={"csrf_token": token}).status_code == 302
    assert db.execute("SELECT enabled FROM alert_rules").fetchone()["enabled"] is False
    assert 'data-testid="rule-enabled">disabled<' in logged_in.get("/alerts/rules").get_data(
        as_text=True)

    assert logged_in.post(f"/alerts/rules/{rule_id}/delete",
                          data={"csrf_token": token}).status_code == 302
    assert rules(db) == []
    assert logged_in.get(f"/alerts/rules/{rule_id}").status_code == 404
    assert logged_in.post(f"/alerts/rules/{rule_id}/delete",
                          data={"csrf_token": token}).status_code == 404


def test_deleting_a_rule_clears_its_open_alerts_which_stay_until_acknowledged(logged_in, db):
    rule_id = add_rule(db)
    other = add_rule(db, name="Other")
    open_id = raise_alert(db, rule_id, "servidor1")
    acked_id = raise_alert(db, rule_id, "servidor2", acked_by="olga", acked_at=NOW)
    other_id = raise_alert(db, other, "servidor3")
    token = csrf_token(logged_in, "/alerts/rules")
    page = logged_in.post(f"/alerts/rules/{rule_id}/delete", data={"csrf_token": token},
                          follow_redirects=True).get_data(as_text=True)
    assert "2 open alert(s) cleared" in page
    alerts = {r["id"]: r for r in db.execute("SELECT * FROM alerts")}
    assert alerts[open_id]["rule_id"] is None and alerts[open_id]["cleared_at"] is not None
    assert alerts[open_id]["rule_name"] == "Server room too hot"  # kept for the record
    assert alerts[other_id]["cleared_at"] is None
    event = db.execute("SELECT actor, detail FROM alert_events WHERE alert_id = %s AND"
                       " kind = 'cleared'", (open_id,)).fetchone()
    assert event == {"actor": "admin", "detail": "rule “Server room too hot” deleted"}
    # the unacknowledged one still needs attention; the acknowledged one is closed
    assert logged_in.get("/alerts/count.json").get_json() == {"needs_attention": 2}
    detail = logged_in.get(f"/alerts/{acked_id}").get_data(as_text=True)
    assert "(deleted)" in detail


def test_others_read_the_rules_but_only_admins_change_them(app, db):
    rule_id = add_rule(db)
    for role in ("operator", "viewer"):
        client = add_user(app, db, role)
        page = client.get("/alerts/rules").get_data(as_text=True)
        assert "Server room too hot" in page
        assert "rule-form-" not in page and 'data-testid="rule-edit"' not in page
        token = csrf_token(client, "/alerts")
        assert client.get(f"/alerts/rules/{rule_id}").status_code == 403
        for path in ("/alerts/rules", f"/alerts/rules/{rule_id}",
                     f"/alerts/rules/{rule_id}/enabled", f"/alerts/rules/{rule_id}/delete"):
            assert client.post(path, data={**THRESHOLD, "csrf_token": token}).status_code == 403
    assert [r["name"] for r in rules(db)] == ["Server room too hot"]
    assert rules(db)[0]["enabled"] is True


def test_rule_forms_need_the_csrf_token(logged_in, db):
    assert logged_in.post("/alerts/rules", data=THRESHOLD).status_code == 400
    assert rules(db) == []
