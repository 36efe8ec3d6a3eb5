"""The simulator against a real Mosquitto (auth on, the repository's ACL), watched by a
subscriber: availability is retained, readings arrive, offline is said on every way out."""
import os
import signal
import subprocess
import sys
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest

from octopus_simulators import layout
from tests.helpers import ROOT
from tests.simulators.conftest import READER_USER, SIMULATOR_USER
from tests.simulators.sim_contract import classify

DEVICES = 4
ATTRIBUTES = [a.name for a in layout.ATTRIBUTES]
STATUS_TOPICS = [d.status_topic for d in layout.fleet(DEVICES)]


class Watcher:
    """A subscriber that records (topic, payload, retain) and can wait for a condition
    (Node-RED's account by default: it reads everything)."""

    def __init__(self, broker, topics=("#",), user=READER_USER):
        self.messages = []
        self.changed = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"test-watch-{uuid.uuid4().hex[:8]}")
        self.client.username_pw_set(user, broker.accounts[user])
        subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(10), "the watcher could not subscribe"

    def _on_message(self, client, userdata, message):
        with self.changed:
            self.messages.append((message.topic, message.payload, message.retain))
            self.changed.notify_all()

    def wait_for(self, predicate, timeout=15, what="messages"):
        with self.changed:
            if not self.changed.wait_for(lambda: predicate(self.messages), timeout):
                raise AssertionError(f"timed out waiting for {what}; got {self.messages[-20:]}")

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def last_status(messages):
    """The last status payload seen per status topic."""
    return {t: p.decode() for t, p, _ in messages if t.endswith("/status")}


def readings_per_topic(messages):
    counts = {}
    for topic, payload, _ in messages:
        if classify(topic, payload)[0] == "measurement":
            counts[topic] = counts.get(topic, 0) + 1
    return counts


def start_simulator(broker, *args, password=None):
    env = dict(os.environ, MQTT_HOST=broker.host, MQTT_PORT=str(broker.port),
               MQTT_SIMULATOR_USER=SIMULATOR_USER,
               MQTT_SIMULATOR_PASSWORD=password or broker.accounts[SIMULATOR_USER],
               PYTHONPATH=str(ROOT / "simulators"))
    return subprocess.Popen(
        [sys.executable, "-m", "octopus_simulators.sensors", "--devices", str(DEVICES),
         "--seed", "42", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process, timeout=15):
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"the simulator did not stop within {timeout} s:\n{output}")
    return process.returncode, output


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_readings_arrive_status_is_retained_online_then_offline(broker, stop_signal):
    watcher = Watcher(broker)
    sim = start_simulator(broker, "--interval", "0.1", "--bad-data-probability", "0")
    try:
        expected = {f"{d.topic}/{a}" for d in layout.fleet(DEVICES) for a in ATTRIBUTES}
        watcher.wait_for(lambda m: all(readings_per_topic(m).get(t, 0) >= 3 for t in expected),
                         what="3 readings on each of the 16 four-level topics")
        assert "oficina/servidores/servidor1/temperatura" in expected

        # A client arriving now learns from the retained status that every device is online.
        late = Watcher(broker, topics=["+/+/+/status"])
        late.wait_for(lambda m: len(m) >= DEVICES, 5, "retained statuses")
        assert sorted(late.messages) == sorted((t, b"online", True) for t in STATUS_TOPICS)
        late.close()
    finally:
        sim.send_signal(stop_signal)
    code, output = finish(sim)
    assert code == 0, output
    assert "4 of 4 devices said offline" in output

    watcher.wait_for(lambda m: all(last_status(m).get(t) == "offline" for t in STATUS_TOPICS),
                     5, "offline on every status topic")
    # offline comes after the device's last reading, and nothing follows it
    for device in layout.fleet(DEVICES):
        own = [(t, p) for t, p, _ in watcher.messages if t.startswith(device.topic + "/")]
        assert own[-1] == (device.status_topic, b"offline"), own[-3:]
    readings = [(t, p) for t, p, _ in watcher.messages if not t.endswith("/status")]
    assert all(classify(t, p) == ("measurement", None) for t, p in readings)
    assert any(p.startswith(b"{") for _, p in readings) and any(
        not p.startswith(b"{") for _, p in readings), "bare and JSON payloads both expected"
    watcher.close()

    after = Watcher(broker, topics=["+/+/+/status"])
    after.wait_for(lambda m: len(m) >= DEVICES, 5, "retained statuses after the stop")
    assert sorted(after.messages) == sorted((t, b"offline", True) for t in STATUS_TOPICS)
    after.close()


def test_a_bounded_run_of_bad_data_only_stops_by_itself(broker):
    watcher = Watcher(broker)
    sim = start_simulator(broker, "--interval", "0.05", "--count", "25",
                          "--bad-data-probability", "1")
    code, output = finish(sim)
    assert code == 0, output
    assert "stopped after 25 rounds: 0 readings and 400 bad messages published" in output
    watcher.wait_for(lambda m: all(last_status(m).get(t) == "offline" for t in STATUS_TOPICS),
                     5, "offline on every status topic")
    # All 400 reached the broker (none broke a connection), and each one is a reject.
    watcher.wait_for(lambda m: len([1 for t, _, _ in m if t not in STATUS_TOPICS]) >= 400, 5)
    others = [(t, p) for t, p, _ in watcher.messages if t not in STATUS_TOPICS]
    assert len(others) == 400
    assert all(classify(t, p)[0] == "reject" for t, p in others), [
        (t, p) for t, p in others if classify(t, p)[0] != "reject"][:5]
    statuses = [(t, p) for t, p, _ in watcher.messages if t in STATUS_TOPICS]
    assert sorted(statuses) == sorted([(t, b"online") for t in STATUS_TOPICS]
                                      + [(t, b"offline") for t in STATUS_TOPICS])
    watcher.close()


def test_a_killed_simulator_leaves_offline_through_its_last_will(broker):
    sim = start_simulator(broker, "--interval", "0.2")
    try:
        watcher = Watcher(broker, topics=["+/+/+/status"])
        watcher.wait_for(lambda m: all(last_status(m).get(t) == "online" for t in STATUS_TOPICS),
                         10, "every device online")
    finally:
        sim.kill()  # no clean stop: the broker sees the connections drop
        sim.communicate()
    watcher.wait_for(lambda m: all(last_status(m).get(t) == "offline" for t in STATUS_TOPICS),
                     5, "the last will of every device")
    watcher.close()
    after = Watcher(broker, topics=["+/+/+/status"])
    after.wait_for(lambda m: len(m) >= DEVICES, 5, "retained statuses")
    assert sorted(after.messages) == sorted((t, b"offline", True) for t in STATUS_TOPICS)
    after.close()


def test_a_wrong_password_stops_with_a_message_about_the_account(broker):
    sim = start_simulator(broker, "--interval", "0.2", password="wrong")
    code, output = finish(sim)  # it stops by itself, instead of retrying the refused account
    assert code == 2, output
    assert "MQTT_SIMULATOR_PASSWORD" in output and "refused" in output


def test_the_simulators_account_cannot_touch_the_platforms_own_topics(broker):
    """A demo account's password travels (.env copied to a laptop): with it, no one may forge
    a live reading, an alert state or a worker's statistics, nor read them."""
    watcher = Watcher(broker)
    forger = Watcher(broker, topics=["octopus/#", "+/+/+/+/set"], user=SIMULATOR_USER)
    try:
        forged = ["octopus/live", "octopus/stats/ingest/worker-1",
                  "octopus/alerts/1/oficina/servidores/servidor1/temperatura"]
        for topic in forged:
            forger.client.publish(topic, '{"forged": true}', qos=1).wait_for_publish(5)
        forger.client.publish("oficina/servidores/servidor1/temperatura", "21.5",
                              qos=1).wait_for_publish(5)  # the control: a reading passes
        watcher.wait_for(lambda m: any(t.startswith("oficina/") for t, _, _ in m), 5,
                         "the control reading")
        assert [t for t, _, _ in watcher.messages] == [
            "oficina/servidores/servidor1/temperatura"]

        for topic in forged:
            broker.publish(topic, '{"real": true}', kind="NODERED")
        broker.publish("oficina/servidores/servidor1/rele/set", "on", kind="PORTAL")
        forger.wait_for(lambda m: any(t.endswith("/set") for t, _, _ in m), 5,
                        "the control command")
        assert [t for t, _, _ in forger.messages] == ["oficina/servidores/servidor1/rele/set"]
    finally:
        forger.close()
        watcher.close()
