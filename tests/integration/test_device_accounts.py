"""Issue 7, acceptance 1: per-device MQTT accounts provisioned on the portal. A device
publishes and subscribes only within its own topics; a revoked one is cut off at once."""
import queue
import re
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from playwright.sync_api import expect

PASSWORD = re.compile(r'data-testid="new-account-password">([^<]+)<')
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
ATTEMPTS = 100


def provision(platform, session, site, room, device):
    """Provision a device on the portal as an admin would; return its (username, password)."""
    page = session.get(f"{platform.portal_url}/device-accounts", timeout=10)
    answer = session.post(f"{platform.portal_url}/device-accounts", timeout=30, data={
        "csrf_token": TOKEN.search(page.text).group(1), "site": site, "room": room,
        "device": device})
    assert answer.status_code == 201, answer.text
    return f"{site}/{room}/{device}", PASSWORD.search(answer.text).group(1)


def revoke(platform, session, username):
    page = session.get(f"{platform.portal_url}/device-accounts", timeout=10).text
    account_id = re.search(rf'data-id="(\d+)" data-username="{re.escape(username)}"', page).group(1)
    answer = session.post(f"{platform.portal_url}/device-accounts/{account_id}/revoke",
                          data={"csrf_token": TOKEN.search(page).group(1)}, timeout=30)
    assert answer.ok


class Device:
    """A paho MQTT 5 client with a device's credentials; what it receives lands in `received`."""

    def __init__(self, platform, username, password):
        self.received = queue.Queue()
        self.connack = queue.Queue()
        self.suback = queue.Queue()
        self.dropped = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"dev-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, u, f, reason, p: self.connack.put(reason)
        self.client.on_disconnect = lambda *args: self.dropped.set()
        self.client.on_subscribe = lambda c, u, mid, reasons, p: self.suback.put(reasons[0])
        self.client.on_message = lambda c, u, m: self.received.put((m.topic, m.payload))
        self.client.connect(platform.host, int(platform.config["MQTT_PORT"]))
        self.client.loop_start()
        self.reason = self.connack.get(timeout=10)

    def subscribe(self, topic):
        self.client.subscribe(topic, qos=1)
        return self.suback.get(timeout=10)

    def publish(self, topic, payload):
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def two_devices(platform):
    session = platform.portal_session()
    site, room = "aislamiento", f"sala{uuid.uuid4().hex[:6]}"
    a = Device(platform, *provision(platform, session, site, room, "a"))
    b = Device(platform, *provision(platform, session, site, room, "b"))
    assert not a.reason.is_failure and not b.reason.is_failure
    yield a, b, f"{site}/{room}"
    a.close()
    b.close()


def test_a_device_cannot_publish_on_another_devices_topics(platform, two_devices):
    a, b, prefix = two_devices
    assert not b.subscribe(f"{prefix}/b/+/set").is_failure
    watcher = platform.mqtt_client("NODERED")  # reads everything, as the ingest does
    seen = queue.Queue()
    watcher.on_message = lambda c, u, m: seen.put(m.topic)
    watcher.subscribe(f"{prefix}/#", qos=1)
    try:
        for i in range(ATTEMPTS):
            a.publish(f"{prefix}/b/temperatura", str(i))
            a.publish(f"{prefix}/b/temperatura/set", str(i))
        a.publish(f"{prefix}/a/temperatura", "own topic")  # the control: this one is delivered
        assert seen.get(timeout=10) == f"{prefix}/a/temperatura"
        assert seen.empty(), "a message of device a reached device b's topics"
        assert b.received.empty(), "device b received a command sent by device a"
    finally:
        watcher.disconnect()
        watcher.loop_stop()
    stored = platform.query("SELECT count(*) FROM devices WHERE site || '/' || room = %s"
                            " AND name = 'b'", (prefix,))
    assert stored[0][0] == 0


def test_a_device_receives_its_own_commands_only(platform, two_devices):
    """Subscriptions beyond its own commands are refused by the plugin or, where the ACL
    file grants the SUBACK (it checks deliveries, not subscriptions), deliver nothing."""
    a, b, prefix = two_devices
    for _ in range(ATTEMPTS // 4):
        for topic in ("#", f"{prefix}/b/#", f"{prefix}/b/+/set", "octopus/#"):
            a.subscribe(topic)
    assert not a.subscribe(f"{prefix}/a/+/set").is_failure
    others = [(f"{prefix}/b/temperatura", str(i)) for i in range(ATTEMPTS)]
    others += [(f"{prefix}/b/luz/set", str(i)) for i in range(ATTEMPTS)]
    others += [("octopus/test", str(i)) for i in range(ATTEMPTS)]
    platform.publish(others + [(f"{prefix}/a/luz/set", "on")])
    assert a.received.get(timeout=10) == (f"{prefix}/a/luz/set", b"on")
    # `#` also matches the own command, which may therefore come twice; nothing else
    assert {topic for topic, _ in a.received.queue} <= {f"{prefix}/a/luz/set"}, \
        list(a.received.queue)[:5]


def test_a_revoked_device_is_disconnected_and_cannot_reconnect(platform):
    session = platform.portal_session()
    username, password = provision(platform, session, "revocacion", "sala", f"d{uuid.uuid4().hex[:6]}")
    device = Device(platform, username, password)
    assert not device.reason.is_failure
    revoke(platform, session, username)
    try:
        assert device.dropped.wait(5), "the revoked device is still connected"
    finally:
        device.close()
    again = Device(platform, username, password)
    again.close()
    assert again.reason.is_failure


def test_wrong_device_password_is_refused(platform):
    session = platform.portal_session()
    username, _ = provision(platform, session, "claves", "sala", f"d{uuid.uuid4().hex[:6]}")
    device = Device(platform, username, "not-the-password")
    device.close()
    assert device.reason.is_failure


@pytest.mark.browser
def test_a_device_provisioned_in_the_browser_connects_and_shows_live(platform, browser,
                                                                      artifacts_dir):
    """Acceptance 4: provision in Chromium, copy the credentials from the page, connect a
    paho client with them, and watch its reading appear on the devices page."""
    site, room, name = "provisionado", "laboratorio", f"sensor{uuid.uuid4().hex[:4]}"
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(platform.portal_url + "/device-accounts")
    page.fill("input[name=username]", platform.config["PORTAL_ADMIN_USER"])
    page.fill("input[name=password]", platform.config["PORTAL_ADMIN_PASSWORD"])
    page.click("button[type=submit]")
    page.get_by_test_id("account-site").fill(site)
    page.get_by_test_id("account-room").fill(room)
    page.get_by_test_id("account-device").fill(name)
    page.get_by_test_id("account-create").click()
    username = page.get_by_test_id("new-account-username").inner_text()
    password = page.get_by_test_id("new-account-password").inner_text()
    page.screenshot(path=str(artifacts_dir / "device-account-created.png"), full_page=True)

    page.get_by_test_id("nav-devices").click()
    expect(page.get_by_test_id("live-state")).to_have_attribute("data-state", "live")
    device = Device(platform, username, password)
    try:
        assert not device.reason.is_failure, device.reason
        device.publish(f"{username}/temperatura", "21.75")
        value = page.locator(f'[data-key="{username}/temperatura"] .value')
        expect(value).to_have_text("21.75", timeout=15_000)
    finally:
        device.close()
    page.screenshot(path=str(artifacts_dir / "device-account-live.png"), full_page=True)
    page.close()
