"""Acceptance 3: a real headless Chromium logs in, sees the simulated devices, and sees a
value change on screen while it is published. The screenshot is kept in tests/artifacts/."""
import uuid

import pytest
from playwright.sync_api import expect


@pytest.mark.browser
def test_browser_sees_devices_and_a_live_value_change(platform, browser, artifacts_dir):
    # An attribute the simulators never send, so that only this test changes it.
    key = f"oficina/servidores/servidor1/presion{uuid.uuid4().hex[:4]}"
    platform.publish([(key, "1.25")])

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(platform.portal_url + "/")
    page.fill("input[name=username]", platform.config["PORTAL_ADMIN_USER"])
    page.fill("input[name=password]", platform.config["PORTAL_ADMIN_PASSWORD"])
    page.click("button[type=submit]")

    # the simulated devices are listed
    for device in ("servidor1",):
        expect(page.locator(f'[data-key^="oficina/servidores/{device}/"]').first).to_be_visible()
    value = page.locator(f'[data-key="{key}"] .value')
    expect(value).to_have_text("1.25", timeout=15_000)

    platform.publish([(key, "2.5")])
    expect(value).to_have_text("2.5", timeout=15_000)
    page.screenshot(path=str(artifacts_dir / "portal-live-value.png"), full_page=True)
    page.close()
