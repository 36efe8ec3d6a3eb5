"""The System page (issue 8) and where its figures come from: the platform's statistics and
Mosquitto's $SYS topics over the portal's MQTT connection, and the database."""
import re
import time
from datetime import datetime, timezone

import paho.mqtt.publish as publish
import pytest

from octopus_portal import live, platform_stats, socketio
from octopus_portal.devices import iso

from .helpers import add_user
from .test_portal_live import live_app, mqtt_message
from .test_portal_metrics import worker_report


def seconds_ago(seconds, now=None):
    """An ISO 8601 UTC time `seconds` before `now` (time.time() if not given), as the workers
    write their report times."""
    return iso(datetime.fromtimestamp((now or time.time()) - seconds, timezone.utc))


def test_every_role_sees_the_system_page_in_the_nav(app, db):
    for role in ("viewer", "operator"):
        client = add_user(app, db, role)
        home = client.get("/").get_data(as_text=True)
        assert 'data-testid="nav-system"' in home
        page = client.get("/system")
        assert page.status_code == 200
        text = page.get_data(as_text=True)
        for section in ("health", "ingest", "broker", "database", "modbus"):
            assert f'data-testid="system-{section}"' in text
        assert 'data-refresh-url="/system/figures"' in text


def test_figures_show_workers_broker_and_database(app, logged_in, db):
    stats = platform_stats.of(app)
    now = time.time()
    since = seconds_ago(20, now)
    stats.handle("octopus/stats/ingest/w1", worker_report(stored=100, since=since,
                                                          at=seconds_ago(10, now)))
    stats.handle("octopus/stats/ingest/w1", worker_report(stored=400, since=since,
                                                          at=seconds_ago(0, now)))  # 300 in 10 s
    stats.handle("$SYS/broker/clients/connected", b"7")
    stats.handle("$SYS/broker/load/publish/received/1min", b"1800.5")
    db.execute("INSERT INTO devices (site, room, name, status) VALUES ('s', 'r', 'd', 'online')")
    html = logged_in.get("/system/figures").get_data(as_text=True)
    assert re.search(r'data-testid="ingest-stored">\s*400<', html)
    assert re.search(r'data-testid="ingest-mqtt">.*>connected<', html)
    assert re.search(r'data-testid="ingest-rate">\s*30\.0<', html)
    assert re.search(r'data-testid="broker-clients">\s*7<', html)
    assert re.search(r'data-testid="broker-received-rate">\s*1,800<', html)
    assert re.search(r'data-testid="db-devices">\s*1 / 0 / 0<', html)
    assert 'data-testid="health-database" data-state="ok"' in html
    assert 'data-testid="health-broker" data-state="down"' in html  # no MQTT in this test


def test_a_worker_silent_for_over_30_s_is_shown_so_and_left_out_of_the_rate(app, logged_in):
    stats = platform_stats.of(app)
    now = time.time()
    for worker, last_report_s in (("alive", 5), ("gone", 31)):
        since = seconds_ago(last_report_s + 20, now)
        stats.handle(f"octopus/stats/ingest/{worker}", worker_report(
            stored=0, since=since, at=seconds_ago(last_report_s + 10, now)))
        stats.handle(f"octopus/stats/ingest/{worker}", worker_report(
            stored=1000, since=since, at=seconds_ago(last_report_s, now)))  # 100 a second
    html = logged_in.get("/system/figures").get_data(as_text=True)
    shown = dict(re.findall(r'data-worker="(\w+)">.*?data-testid="ingest-mqtt">(.*?)</td>',
                            html, re.S))
    assert ">connected<" in shown["alive"]  # its report says connected
    assert ">silent<" in shown["gone"]      # so did its last one, 31 s ago
    assert re.search(r'data-testid="ingest-rate">\s*100\.0<', html)


def test_live_clients_count_the_browsers_of_this_process(app, logged_in):
    def shown():
        html = logged_in.get("/system/figures").get_data(as_text=True)
        return int(re.search(r'data-testid="live-clients">(\d+)<', html).group(1))
    assert shown() == 0
    sockets = [socketio.test_client(app, flask_test_client=logged_in) for _ in range(2)]
    alerts_only = socketio.test_client(app, namespace=live.ALERTS_NAMESPACE,
                                       flask_test_client=logged_in)
    assert shown() == 3
    sockets[0].disconnect()
    assert shown() == 2
    alerts_only.disconnect(namespace=live.ALERTS_NAMESPACE)


@pytest.mark.parametrize("payload", [b"not json", b"[1]", b"\xff"])
def test_malformed_statistics_are_ignored(app, payload):
    stats = platform_stats.of(app)
    assert stats.handle("octopus/stats/ingest/w1", payload) is False
    assert stats.handle("octopus/stats/other/w1", b"{}") is False
    assert stats.handle("$SYS/broker/clients/connected", b"many") is False
    assert stats.snapshot()["ingest"] == {} and stats.snapshot()["broker"] == {}


def test_a_restarted_worker_has_no_rate_until_its_second_report(app):
    stats = platform_stats.of(app)
    stats.handle("octopus/stats/ingest/w1", worker_report(stored=500))
    stats.handle("octopus/stats/ingest/w1", worker_report(
        stored=20, since="2026-11-22T13:00:00.000Z", at="2026-11-22T13:00:10.000Z"))
    assert stats.snapshot()["ingest"]["w1"]["rate"] is None
    stats.handle("octopus/stats/ingest/w1", worker_report(
        stored=70, since="2026-11-22T13:00:00.000Z", at="2026-11-22T13:00:20.000Z"))
    assert stats.snapshot()["ingest"]["w1"]["rate"] == 5.0


def test_the_bridge_hands_statistics_to_platform_stats_not_to_browsers(app, logged_in):
    sio = socketio.test_client(app, flask_test_client=logged_in)
    bridge = app.extensions[live.EXTENSION]
    bridge.on_message(None, None, mqtt_message(worker_report(stored=9), "octopus/stats/ingest/w"))
    bridge.on_message(None, None, mqtt_message(b"3", "$SYS/broker/clients/connected"))
    assert platform_stats.of(app).snapshot()["ingest"]["w"]["stored"] == 9
    assert platform_stats.of(app).snapshot()["broker"]["clients_connected"] == 3
    assert sio.get_received() == []


def test_a_real_broker_gives_its_sys_figures_and_retained_statistics(make_app, mqtt_broker):
    """The ACL lets the portal's account read $SYS/# and octopus/stats/#, and both are
    retained: a portal that starts afterwards has them at once."""
    user, password = mqtt_broker.user("NODERED")
    publish.single("octopus/stats/ingest/w9", worker_report(stored=12), qos=1, retain=True,
                   hostname="127.0.0.1", port=mqtt_broker.port,
                   auth={"username": user, "password": password})
    app = live_app(make_app, mqtt_broker)
    assert app.extensions[live.EXTENSION].subscribed.wait(10)
    stats = platform_stats.of(app)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
            "clients_connected" in stats.snapshot()["broker"] and stats.snapshot()["ingest"]):
        time.sleep(0.1)
    snapshot = stats.snapshot()
    assert snapshot["broker"]["clients_connected"] >= 0  # as of Mosquitto's last update
    assert snapshot["broker_version"].startswith("mosquitto version 2")
    assert snapshot["ingest"]["w9"]["stored"] == 12


def test_statistics_under_too_many_names_are_not_kept(app):
    stats = platform_stats.of(app)
    for i in range(platform_stats.MAX_WORKERS + 10):
        stats.handle(f"octopus/stats/ingest/w{i}", worker_report(stored=i))
    kept = stats.snapshot()["ingest"]
    assert len(kept) == platform_stats.MAX_WORKERS
    assert stats.handle("octopus/stats/ingest/w0", worker_report(stored=99))  # known: updated
    assert stats.snapshot()["ingest"]["w0"]["stored"] == 99
