"""The System page in a real headless Chromium against the portal under gunicorn: it shows the
figures and follows them without a reload (static/system.js)."""
import time

import paho.mqtt.publish as publish
import pytest
from playwright.sync_api import expect

from .helpers import ADMIN_PASSWORD, ADMIN_USER
from .test_portal_browser import portal_url  # noqa: F401  (the fixture)
from .test_portal_metrics import worker_report
from .test_portal_system import seconds_ago


@pytest.mark.browser
def test_system_page_follows_the_workers_reports(portal_url, mqtt_broker,  # noqa: F811
                                                 artifacts_dir, new_page):
    page = new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(portal_url + "/system")
    page.fill("input[name=username]", ADMIN_USER)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_test_id("nav-system")).to_have_attribute("aria-current", "page")
    expect(page.get_by_test_id("health-database")).to_have_attribute("data-state", "ok")
    expect(page.get_by_test_id("health-broker")).to_have_attribute("data-state", "ok")

    # a worker reports while the page is open: it appears, then its count moves
    user, password = mqtt_broker.user("NODERED")
    auth = {"username": user, "password": password}
    now = time.time()  # the reports' times: 10 s apart, the second one now
    since = seconds_ago(20, now)
    publish.single("octopus/stats/ingest/worker-b",
                   worker_report(stored=1234, since=since, at=seconds_ago(10, now)), qos=1,
                   retain=True, hostname="127.0.0.1", port=mqtt_broker.port, auth=auth)
    worker = page.locator('[data-testid=ingest-worker][data-worker="worker-b"]')
    expect(worker.get_by_test_id("ingest-stored")).to_have_text("1,234", timeout=15_000)
    publish.single("octopus/stats/ingest/worker-b",
                   worker_report(stored=2234, since=since, at=seconds_ago(0, now)), qos=1,
                   retain=True, hostname="127.0.0.1", port=mqtt_broker.port, auth=auth)
    expect(worker.get_by_test_id("ingest-stored")).to_have_text("2,234", timeout=15_000)
    expect(page.get_by_test_id("ingest-rate")).to_have_text("100.0")  # 1,000 in 10 s
    expect(page.get_by_test_id("system-refresh")).to_contain_text("updated")
    page.screenshot(path=str(artifacts_dir / "system-page.png"), full_page=True)
    assert errors == []
