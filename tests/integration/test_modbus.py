"""Issue 5: Modbus TCP devices polled by the platform's own Node-RED flow.

Simulated OSM27 reclosers (pymodbus, in this process) are added on the portal's /modbus page
as an admin would; Node-RED picks them up without a redeploy, and what it reads reaches
PostgreSQL through MQTT and the ingest like any device's readings."""
import json
import re
import threading
import time
import uuid
from pathlib import Path

import pytest
from pymodbus.client import ModbusTcpClient

from launcher.stack import free_ports
from octopus_simulators.osm27 import Osm27Fleet
from tests.helpers import ROOT
from tests.integration.conftest import wait_for

PROFILE = json.loads((ROOT / "modbus/profiles/osm27.json").read_text())
# 1 s, the usual interval: "offline within 3 poll intervals" then has a second of margin on
# a loaded CI machine
INTERVAL_S = 1.0
FAILURE_KINDS = ("timeouts", "exceptions", "connection_errors", "garbage")


@pytest.fixture(scope="module")
def fleet():
    fleet = Osm27Fleet(count=3, host="127.0.0.1", ports=free_ports(3), seed=5)
    fleet.start()
    yield fleet
    fleet.stop()


@pytest.fixture(scope="module")
def site(platform, fleet):
    """A site of its own holding the three simulated reclosers, added through the portal."""
    site = f"it-modbus-{uuid.uuid4().hex[:6]}"
    session = platform.portal_session()
    for i, port in enumerate(fleet.ports):
        page = session.get(f"{platform.portal_url}/modbus", timeout=10).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        response = session.post(f"{platform.portal_url}/modbus", timeout=10, data={
            "csrf_token": token, "site": site, "room": "subestacion", "name": f"osm{i}",
            "host": "127.0.0.1", "port": str(port), "unit_id": "1", "profile": "osm27",
            "interval_s": str(INTERVAL_S), "enabled": "on"})
        assert response.ok and response.url.endswith("/modbus"), response.text[:500]
    yield site
    platform.query("DELETE FROM modbus_devices WHERE site = %s RETURNING id", (site,))


def expected_values(port):
    """What the simulator serves on `port`, read and decoded here with pymodbus, not with the
    code under test: register type, data type, word order and scale from the profile."""
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=3)
    assert client.connect()
    try:
        values = {}
        for a in PROFILE["attributes"]:
            data_type = getattr(client.DATATYPE, a["type"].upper())
            read = {"input": client.read_input_registers,
                    "holding": client.read_holding_registers}[a["register"]]
            result = read(a["address"], count=data_type.value[1], device_id=1)
            assert not result.isError(), result
            raw = client.convert_from_registers(result.registers, data_type,
                                                word_order=a.get("word_order", "big"))
            if "states" in a:
                values[a["name"]] = a["states"][str(raw)]
            else:
                values[a["name"]] = raw * a.get("scale", 1) + a.get("offset", 0)
        return values
    finally:
        client.close()


def last_values(platform, site, device):
    rows = platform.query(
        "SELECT a.name, a.last_num, a.last_txt, a.unit FROM attributes a"
        " JOIN devices d ON d.id = a.device_id WHERE (d.site, d.room, d.name) = (%s, 'subestacion', %s)",
        (site, device))
    return {name: (num, txt, unit) for name, num, txt, unit in rows}


def stats(platform, site, device):
    rows = platform.query(
        "SELECT s.status, s.polls, s.ok, s.timeouts, s.exceptions, s.connection_errors,"
        " s.garbage, s.overflows FROM modbus_poll_stats s JOIN modbus_devices d ON d.id = s.device_id"
        " WHERE (d.site, d.name) = (%s, %s)", (site, device))
    if not rows:
        return None
    names = ("status", "polls", "ok") + FAILURE_KINDS + ("overflows",)
    return dict(zip(names, rows[0]))


def readings_between(platform, site, device, start, end):
    """Polls of `device` stored with a poll time in [start, end) (epoch seconds): one ia each."""
    return platform.query(
        "SELECT count(*) FROM measurements m JOIN attributes a ON a.id = m.attribute_id"
        " JOIN devices d ON d.id = a.device_id WHERE (d.site, d.name, a.name) = (%s, %s, 'ia')"
        " AND m.ts >= to_timestamp(%s) AND m.ts < to_timestamp(%s)",
        (site, device, start, end))[0][0]


class StatusWatch:
    """Every retained/live `status` message of the site's devices, with its arrival time."""

    def __init__(self, platform, site):
        self.seen = []
        self.lock = threading.Lock()
        # Node-RED's account: the only platform account that may read device topics
        self.client = platform.mqtt_client(account="NODERED")
        self.client.on_message = self.on_message
        self.client.subscribe(f"{site}/subestacion/+/status", qos=1)

    def on_message(self, client, userdata, message):
        with self.lock:
            self.seen.append((time.monotonic(), message.topic.split("/")[2],
                              message.payload.decode()))

    def first(self, device, status, after):
        with self.lock:
            return next((t for t, d, s in self.seen if d == device and s == status and t >= after),
                        None)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_every_osm27_attribute_is_stored_as_the_simulator_served_it(platform, fleet, site):
    fleet.hold(True)
    try:
        expected = expected_values(fleet.ports[0])
        served = fleet.values(0)
        assert set(expected) == set(served) == {"ia", "ib", "ic", "va", "vb", "vc", "p_act",
                                                "p_react", "fp", "estado"}
        for name, value in served.items():  # the simulator encodes what it means to serve
            assert expected[name] == (value if isinstance(value, str) else pytest.approx(value))

        def stored_matches():
            stored = last_values(platform, site, "osm0")
            if set(stored) != set(expected):
                return None
            for name, value in expected.items():
                num, txt, _ = stored[name]
                if isinstance(value, str) and txt != value:
                    return None
                if not isinstance(value, str) and (num is None or abs(num - value) > 1e-6 * max(1, abs(value))):
                    return None
            return stored
        stored = wait_for(stored_matches, 30, what=f"osm0's stored values to equal {expected}")
    finally:
        fleet.hold(False)
    units = {a["name"]: a.get("unit") for a in PROFILE["attributes"]}
    assert {name: unit for name, (_, _, unit) in stored.items()} == units
    # the simulated values are plausible for a 22.9 kV feeder: the decoding got the scale right
    assert 12_000 < stored["va"][0] < 14_500
    assert -1 <= stored["fp"][0] <= 1


def test_a_stopped_device_goes_offline_in_time_and_the_others_keep_their_rate(platform, fleet, site):
    watch = StatusWatch(platform, site)
    try:
        wait_for(lambda: all(stats(platform, site, f"osm{i}") and
                             stats(platform, site, f"osm{i}")["status"] == "online"
                             for i in range(3)), 30, what="three devices online")
        stopped_at = time.monotonic()
        outage_start = time.time()
        fleet.stop_device(1)
        offline_at = wait_for(lambda: watch.first("osm1", "offline", stopped_at), 10,
                              interval=0.05, what="osm1 offline")
        assert offline_at - stopped_at <= 3 * INTERVAL_S, \
            f"offline after {offline_at - stopped_at:.2f} s, more than 3 poll intervals"
        time.sleep(6)
        outage_end = time.time()

        restarted_at = time.monotonic()
        fleet.start_device(1)
        wait_for(lambda: watch.first("osm1", "online", restarted_at), 20, interval=0.1,
                 what="osm1 online again")
    finally:
        watch.close()
    # the others were polled at their rate all along (stored by poll time)
    window = (outage_start + 1, outage_end - 1)
    expected_polls = (window[1] - window[0]) / INTERVAL_S
    wait_for(lambda: readings_between(platform, site, "osm0", outage_end, time.time() + 1) > 0,
             15, what="readings after the outage stored")
    for device in ("osm0", "osm2"):
        polls = readings_between(platform, site, device, *window)
        assert polls >= expected_polls - 1, f"{device}: {polls} polls in {expected_polls:.0f} ticks"
    assert readings_between(platform, site, "osm1", *window) == 0
    # and osm1 is polled again, without any redeploy
    back = time.time()
    wait_for(lambda: readings_between(platform, site, "osm1", back, back + 60) >= 3, 20,
             what="osm1 polled again")


@pytest.mark.parametrize("fault,kind", [("exception", "exceptions"), ("garbage", "garbage"),
                                        ("no-answer", "timeouts"),
                                        ("disconnect", "connection_errors")])
def test_failures_are_counted_visible_and_harmless(platform, fleet, site, fault, kind):
    wait_for(lambda: (stats(platform, site, "osm2") or {}).get("status") == "online", 30,
             what="osm2 online")
    before = stats(platform, site, "osm2")
    fleet.set_fault(2, fault)
    try:
        after = wait_for(lambda: (lambda s: s if s[kind] >= before[kind] + 3 else None)(
            stats(platform, site, "osm2")), 20, what=f"3 more {kind} counted")
        assert after["status"] == "offline"
        for other in set(FAILURE_KINDS) - {kind}:
            assert after[other] == before[other], f"{fault} counted as {other}"
        # visible on the portal
        page = platform.portal_session().get(f"{platform.portal_url}/modbus", timeout=10).text
        row = re.search(rf'data-topic="{site}/subestacion/osm2".*?</tr>', page, re.S).group(0)
        shown = int(re.search(rf'data-kind="{kind}" data-count="(\d+)"', row).group(1))
        assert shown >= before[kind] + 3
        # nothing else suffered: Node-RED answers and the other devices are still online
        assert platform.stack.supervisor.exited() == {}
        for other in ("osm0", "osm1"):
            assert stats(platform, site, other)["status"] == "online"
    finally:
        fleet.set_fault(2, "none")
    wait_for(lambda: stats(platform, site, "osm2")["status"] == "online", 30,
             what="osm2 online after the fault")


def test_the_demo_recloser_is_polled(platform):
    """`./octopus up` registers the demo simulator's recloser(s); the tests run one."""
    wait_for(lambda: platform.query(
        "SELECT count(*) FROM attributes a JOIN devices d ON d.id = a.device_id"
        " WHERE (d.site, d.room, d.name) = ('planta', 'subestacion', 'reconectador1')")[0][0] == 10,
        30, what="the demo recloser's ten attributes")


def test_the_recloser_view_follows_the_device_live(platform, fleet, site, new_page, artifacts_dir):
    from playwright.sync_api import expect
    device_id = platform.query("SELECT id FROM modbus_devices WHERE (site, name) = (%s, 'osm0')",
                               (site,))[0][0]
    page = new_page(viewport={"width": 1100, "height": 800})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(platform.portal_url + "/login")
    page.fill("input[name=username]", platform.config["PORTAL_ADMIN_USER"])
    page.fill("input[name=password]", platform.config["PORTAL_ADMIN_PASSWORD"])
    page.click("button[type=submit]")
    page.goto(f"{platform.portal_url}/modbus")
    page.locator(f'[data-topic="{site}/subestacion/osm0"]').get_by_test_id(
        "modbus-recloser-view").click()
    expect(page.get_by_test_id("live-state")).to_have_attribute("data-state", "live")
    # the simulator trips the recloser: the page shows it open with no current, as it happens
    fleet.set_state(0, "lockout")
    expect(page.get_by_test_id("recloser-estado")).to_have_attribute("data-state", "lockout",
                                                                     timeout=10_000)
    for phase in ("ia", "ib", "ic"):
        expect(page.get_by_test_id(f"recloser-{phase}").locator(".value")).to_have_text("0")
    fleet.set_state(0, "closed")
    expect(page.get_by_test_id("recloser-estado")).to_have_attribute("data-state", "closed",
                                                                     timeout=10_000)
    served = fleet.values(0)
    assert served["ia"] > 0
    va = float(page.get_by_test_id("recloser-va").locator(".value").inner_text())
    assert 12_000 < va < 14_500
    page.screenshot(path=str(artifacts_dir / "recloser-view.png"))
    assert errors == []
