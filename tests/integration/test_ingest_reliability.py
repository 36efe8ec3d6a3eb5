"""Issue 3, acceptance 1-3: what a QoS 1 publisher handed over is stored exactly once, whatever
fails in between. Every message's value is its sequence number, published bare (so the ingest
stamps it with its arrival time: the hard case for exactly-once)."""
import json
import signal
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest

from tests.helpers import free_port
from tests.integration.conftest import wait_for

RATE = 600            # messages per second, over all publisher connections: a modest rate
TOTAL = 6000          # ten seconds of load per test
STALL_SECONDS = 60
NODE_RED_RSS_BOUND_MB = 300  # Node-RED idles at ~110 MB; the stall must not grow it past this


class SequencedLoad:
    """QoS 1 publishers on several connections sending 0, 1, 2, ... at a steady rate to
    `<site>/load/dev<k>/seq`; each publisher reconnects and resends by itself (paho)."""

    def __init__(self, platform, total=TOTAL, rate=RATE, connections=4):
        self.platform, self.total, self.rate = platform, total, rate
        self.site = f"rel{uuid.uuid4().hex[:8]}"
        self.clients = [platform.mqtt_client() for _ in range(connections)]
        # Broker acknowledgements by (connection, message id), from paho's on_publish. (A
        # message published while the broker is away is queued by paho and sent on
        # reconnect; its MQTTMessageInfo keeps the "not connected" error, so it cannot tell.)
        self.acked = set()
        for index, client in enumerate(self.clients):
            client.on_publish = (lambda i: lambda c, u, mid, rc, p: self.acked.add((i, mid)))(index)
        self.infos = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        start = time.monotonic()
        for seq in range(self.total):
            index = seq % len(self.clients)
            topic = f"{self.site}/load/dev{index}/seq"
            self.infos.append((index, self.clients[index].publish(topic, str(seq), qos=1).mid))
            lag = start + (seq + 1) / self.rate - time.monotonic()
            if lag > 0:
                time.sleep(lag)

    def start(self):
        self.thread.start()
        return self

    def wait_until_sent(self, fraction):
        wait_for(lambda: len(self.infos) >= fraction * self.total, 60,
                 what=f"{fraction:.0%} of the load to be published")

    def wait_handed_over(self, timeout=120):
        """Every message acknowledged by the broker: from here on it is the platform's."""
        self.thread.join(timeout)
        wait_for(lambda: self.acked.issuperset(self.infos), timeout,
                 what="the broker to acknowledge every message")
        for client in self.clients:
            client.disconnect()
            client.loop_stop()

    def stored(self):
        return [int(v) for (v,) in self.platform.query(
            "SELECT m.num FROM measurements m JOIN attributes a ON a.id = m.attribute_id"
            " JOIN devices d ON d.id = a.device_id WHERE d.site = %s", (self.site,))]

    def assert_stored_exactly_once(self, timeout=120):
        """After the backlog drains: no sequence number missing, none stored twice."""
        deadline = time.monotonic() + timeout
        count, last_change = -1, time.monotonic()
        while time.monotonic() < deadline and count < self.total:
            now_count = len(set(self.stored()))
            if now_count != count:
                count, last_change = now_count, time.monotonic()
            elif time.monotonic() - last_change > 20:
                break  # no progress for 20 s: what is missing will not come
            time.sleep(0.5)
        time.sleep(1)  # a late duplicate would land now
        values = self.stored()
        missing = set(range(self.total)) - set(values)
        duplicated = len(values) - len(set(values))
        assert (len(missing), duplicated) == (0, 0), \
            f"{len(missing)} missing (e.g. {sorted(missing)[:5]}), {duplicated} duplicated"


def kill_node_red(stack):
    stack.supervisor.stop("nodered", sig=signal.SIGKILL)
    time.sleep(1)
    stack.start_nodered()


def restart_postgresql(stack):
    stack.supervisor.stop("postgres")  # SIGINT: a fast shutdown, open transactions roll back
    time.sleep(2)
    stack.start_postgres()


def restart_mosquitto(stack):
    stack.supervisor.stop("mosquitto")  # SIGTERM: the broker saves its sessions
    time.sleep(1)
    stack.start_mosquitto()


@pytest.mark.parametrize("disrupt", [kill_node_red, restart_postgresql, restart_mosquitto])
def test_disruption_mid_ingest_loses_and_duplicates_nothing(platform, disrupt):
    load = SequencedLoad(platform).start()
    load.wait_until_sent(1 / 3)
    disrupt(platform.stack)
    load.wait_handed_over()
    load.assert_stored_exactly_once()


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def test_stalled_database_keeps_node_red_bounded_and_loses_nothing(platform):
    pid = platform.stack.supervisor.pid("nodered")
    rates = STALL_SECONDS * 300
    with platform.db() as blocker:
        # Every ingest_keyed_batch call now waits on this lock, as on a database that hangs.
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE measurements IN ACCESS EXCLUSIVE MODE")
        load = SequencedLoad(platform, total=rates, rate=300).start()
        peak = 0.0
        deadline = time.monotonic() + STALL_SECONDS
        while time.monotonic() < deadline:
            peak = max(peak, rss_mb(pid))
            time.sleep(1)
        # (Nothing can be read from measurements here either: the lock holds readers too.)
        blocker.execute("COMMIT")
    load.wait_handed_over()
    load.assert_stored_exactly_once(timeout=180)
    print(f"Node-RED peak RSS during a {STALL_SECONDS} s stall at 300 msg/s: {peak:.0f} MB")
    assert peak < NODE_RED_RSS_BOUND_MB


def test_two_ingest_workers_share_the_load_exactly_once(platform):
    worker_ids = set()
    watcher = platform.mqtt_client("PORTAL")

    def on_stats(client, userdata, message):
        stats = json.loads(message.payload)
        if stats.get("received", 0) > 0:
            worker_ids.add(stats["worker"])
    watcher.on_message = on_stats
    watcher.subscribe("octopus/stats/ingest/#", qos=0)

    # Several workers use the shared subscription (INGEST_SUBSCRIPTION); the first worker is
    # restarted with it, and goes back to the default (exclusive) afterwards.
    shared = "$share/octopus-ingest/#"
    stack, second = platform.stack, "nodered-2"
    stack.supervisor.stop("nodered")
    stack.start_nodered(INGEST_SUBSCRIPTION=shared)
    # Leaving the group on stop: a stopped member's share would otherwise wait in its
    # session for it to come back (doc/ingest.md).
    stack.start_nodered(second, port=free_port(), client_id="octopus-nodered-test-2",
                        INGEST_SUBSCRIPTION=shared, INGEST_LEAVE_GROUP_ON_STOP="true")
    try:
        load = SequencedLoad(platform, total=TOTAL, rate=2 * RATE).start()
        load.wait_handed_over()
        load.assert_stored_exactly_once()
        wait_for(lambda: len(worker_ids) >= 2, 25, what="stats from both workers")
    finally:
        watcher.disconnect()
        watcher.loop_stop()
        stack.supervisor.stop(second)
        stack.supervisor.stop("nodered")
        stack.start_nodered()
