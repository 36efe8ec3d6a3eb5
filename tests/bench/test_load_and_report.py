"""The load's sequence numbers, the tutorial broker's config and the report's verdicts."""
import socket
import threading
import time

import pytest

from bench import loadgen, nodeprofile, report, services, wire
from bench.scenarios import Outcome


def test_every_sequence_number_is_sent_exactly_once_over_all_devices():
    load = loadgen.Load(messages=1003, processes=3, connections=4)
    sent = [s for d in range(load.devices) for s in loadgen.sequences_for(d, load.devices, 1003)]
    assert sorted(sent) == list(range(1, 1004))


def test_a_devices_stream_is_its_publishes_back_to_back():
    load = loadgen.Load(messages=50, processes=1, connections=3, attributes=2)
    stream, ends = loadgen.device_stream(1, load)
    payloads, acks, rest = wire.split_publishes(stream)
    assert [int(p) for p in payloads] == list(range(2, 51, 3))
    assert ends[-1] == len(stream) and len(ends) == len(payloads) and rest == b""
    assert loadgen.topic_for(123, 2) == "bench/room012/dev00123/attr2"


def test_the_tutorial_broker_keeps_mosquittos_default_queue_limits():
    conf = "listener 1\nmax_queued_messages 1000000\nqueue_qos0_messages true\nmax_inflight_messages 500\npersistence true\n"
    text = services.without_queue_limits(conf)
    assert "listener 1" in text and "persistence true" in text
    assert [l for l in text.splitlines() if l.startswith(("max_", "queue_"))] == []


def outcome(key, distinct, elapsed, messages=1000, received=None):
    return Outcome(key=key, title=key, messages=messages, published=messages, publish_rate=1.0,
                   received=distinct if received is None else received, distinct=distinct,
                   elapsed=elapsed, end="complete", server_cpu={"mosquitto": 0.01},
                   client_cpu={})


def test_report_marks_each_target_met_or_not():
    load = loadgen.Load(messages=1000)
    text = report.render({"a": outcome("a", 1000, 1.0), "b": outcome("b", 100, 1.0),
                          "d": outcome("d", 100, 2.0), "c": outcome("c", 800, 1.0, received=801)},
                         load)
    broker, tutorial, clean = (next(l for l in text.splitlines() if l.startswith(f"  ingest{s}"))
                               for s in (" / bare", " / tutorial", ": 0 lost"))
    assert "80 %" in broker and broker.endswith(" met") and not broker.endswith("NOT met")
    assert "8.0×" in tutorial and "(b)" in tutorial   # judged against the faster tutorial run
    assert clean.endswith("NOT met")                  # 200 lost, 1 duplicated
    slow = report.render({"a": outcome("a", 1000, 1.0), "c": outcome("c", 700, 1.0)}, load)
    assert "70 %" in slow and "NOT met" in slow


def test_cpu_profile_summary_by_package_and_function():
    profile = {"nodes": [
        {"id": 1, "callFrame": {"functionName": "(root)", "url": "", "lineNumber": -1}},
        {"id": 2, "callFrame": {"functionName": "parse", "lineNumber": 9,
                                "url": "file:///x/node_modules/mqtt-packet/parser.js"}},
        {"id": 3, "callFrame": {"functionName": "(garbage collector)", "url": "", "lineNumber": -1}}],
        "samples": [2, 2, 3, 1], "timeDeltas": [1000, 1000, 1000, 1000]}
    total, functions, packages = nodeprofile.summarise(profile)
    assert total == 4
    assert functions[0] == ("parse (mqtt-packet:10)", 2)
    assert dict(packages) == {"mqtt-packet": 2, "(garbage collector)": 1, "(root)": 1}


def _acknowledging_peer(sock, received):
    """A broker's side of one connection: acknowledge each PUBLISH, keep its payload."""
    rest = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return
        payloads, acks, rest = wire.split_publishes(rest + data)
        received.extend(int(p) for p in payloads)
        sock.sendall(acks)


@pytest.mark.parametrize("pace_s", [0.0, 0.005])
def test_publish_all_delivers_every_message_within_the_window_paced_or_not(pace_s):
    load = loadgen.Load(messages=90, processes=1, connections=3)
    conns, peers, received = [], [], [[] for _ in range(3)]
    for device in range(3):
        ours, theirs = socket.socketpair()
        conns.append(loadgen.Connection(ours, *loadgen.device_stream(device, load)))
        peers.append(threading.Thread(target=_acknowledging_peer, args=(theirs, received[device]),
                                      daemon=True))
        peers[-1].start()
    loadgen.publish_all(conns, window=4, deadline=time.monotonic() + 30, pace_s=pace_s)
    for c in conns:
        c.sock.close()
    for p in peers:
        p.join(5)
    assert [c.acked for c in conns] == [30, 30, 30]
    assert received == [list(loadgen.sequences_for(d, 3, 90)) for d in range(3)]
