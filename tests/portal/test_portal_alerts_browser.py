"""The alerts page and the nav badge in a real headless Chromium against the portal under
gunicorn: new alerts appear without a reload, rows follow their state, the badge counts."""
import json
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from octopus_portal.alerts import alert_state

from .helpers import ADMIN_PASSWORD, ADMIN_USER
from .test_portal_alerts import NOW, add_rule, raise_alert
from .test_portal_browser import portal_url  # noqa: F401 (the fixture)


def state(db, alert_id):
    """The alert's state as Node-RED publishes it (the portal's own rendering of a row)."""
    return alert_state(db.execute("SELECT * FROM alerts WHERE id = %s", (alert_id,)).fetchone())


def publish(broker, db, alert_id):
    alert = state(db, alert_id)
    topic = "/".join(("octopus/alerts", str(alert["rule_id"]), alert["site"], alert["room"],
                      alert["device"], alert["attribute"]))
    broker.publish(topic, json.dumps(alert), kind="NODERED")
    return alert


@pytest.mark.browser
def test_alerts_page_and_badge_follow_live(portal_url, mqtt_broker, db, artifacts_dir,  # noqa: F811
                                           new_page):
    rule = add_rule(db)
    first = raise_alert(db, rule, "servidor1", minutes_ago=10)
    page = new_page(viewport={"width": 1400, "height": 900}, timezone_id="Asia/Tokyo",
                    locale="en-GB")
    errors, sockets = [], []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("websocket", lambda ws: sockets.append(ws.url))

    page.goto(portal_url + "/")
    page.fill("input[name=username]", ADMIN_USER)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_test_id("live-state")).to_have_text("live", timeout=10_000)
    badge = page.get_by_test_id("alerts-badge")
    expect(badge).to_have_text("1")

    # on the devices page too, a new alert moves the badge; one connection serves both feeds
    second = raise_alert(db, rule, "servidor2", minutes_ago=1)
    publish(mqtt_broker, db, second)
    expect(badge).to_have_text("2")
    assert len(sockets) == 1, sockets

    page.goto(portal_url + "/alerts")
    rows = page.locator("[data-list=attention] tr[data-testid=alert]")
    expect(rows).to_have_count(2)
    third = raise_alert(db, rule, "servidor3", minutes_ago=0, severity="critical")
    publish(mqtt_broker, db, third)
    expect(rows).to_have_count(3)
    expect(rows.first).to_have_attribute("data-alert-id", str(third))  # newest first
    expect(rows.first.locator("[data-field=severity]")).to_have_text("critical")
    expect(badge).to_have_text("3")
    expect(page.get_by_test_id("attention-count")).to_have_text("3")
    # its times are in the browser's zone (Tokyo), like the server-drawn rows
    local = (NOW + timedelta(hours=9)).strftime("%H:%M")
    assert local in rows.first.locator("[data-field=raised_at]").text_content()

    # cleared by Node-RED: the row says so, and stays until someone acknowledges it
    db.execute("UPDATE alerts SET cleared_at = now(), cleared_value = '24.0' WHERE id = %s",
               (first,))
    publish(mqtt_broker, db, first)
    row = page.locator(f'tr[data-testid=alert][data-alert-id="{first}"]')
    expect(row.locator("[data-field=state]")).to_have_text("cleared")
    expect(row.locator("[data-field=cleared_value]")).to_have_text("24.0")

    row.get_by_test_id("alert-ack").click()  # the form posts; the page comes back
    expect(page.get_by_test_id("flash")).to_contain_text(f"Alert {first} acknowledged")
    closed = page.locator(f'[data-list=closed] tr[data-alert-id="{first}"]')
    expect(closed).to_have_count(1)
    expect(badge).to_have_text("2")
    # a late copy of an older state does not take the acknowledgement back
    mqtt_broker.publish(f"octopus/alerts/{rule}/oficina/servidores/servidor1/temperatura",
                        json.dumps({**state(db, first), "acked_at": None, "acked_by": None}),
                        kind="NODERED")
    page.wait_for_timeout(500)
    expect(closed.locator("[data-field=acked_by]")).to_have_text("admin")
    expect(closed.locator("[data-field=state]")).to_have_text("cleared")

    page.screenshot(path=str(artifacts_dir / "portal-alerts-live.png"), full_page=True)
    assert errors == []
