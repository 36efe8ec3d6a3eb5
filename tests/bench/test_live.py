"""The live benchmark's pieces: WebSocket frames both ways, events told apart, send times,
and the latency percentiles."""
import json
import struct

from bench import live
from bench import socketio_wire as sio


def server_frame(payload, opcode=sio.TEXT, fin=True):
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        return struct.pack("!BB", first, n) + payload
    if n < 65536:
        return struct.pack("!BBH", first, 126, n) + payload
    return struct.pack("!BBQ", first, 127, n) + payload


def unmask(frame):
    """(opcode, payload) of a client frame, checking that it is masked."""
    assert frame[1] & 0x80
    n, i = frame[1] & 0x7F, 2
    if n == 126:
        n, i = struct.unpack_from("!H", frame, 2)[0], 4
    elif n == 127:
        n, i = struct.unpack_from("!Q", frame, 2)[0], 10
    mask, data = frame[i:i + 4], frame[i + 4:]
    assert len(data) == n
    return frame[0] & 0x0F, bytes(b ^ mask[k % 4] for k, b in enumerate(data))


def test_client_frames_are_masked_and_read_back_whatever_their_length():
    for text in ("3", "x" * 200, "y" * 70000):
        assert unmask(sio.client_frame(text)) == (sio.TEXT, text.encode())
    assert unmask(sio.client_frame(b"ping", sio.PONG)) == (sio.PONG, b"ping")


def test_server_frames_are_split_whole_and_the_rest_kept():
    stream = server_frame(b"2") + server_frame(b"a" * 300) + server_frame(b"b" * 70000)
    frames, rest = sio.split_frames(stream[:-10])
    assert [(fin, op, len(p)) for fin, op, p in frames] == [(True, 1, 1), (True, 1, 300)]
    frames, rest = sio.split_frames(rest + stream[-10:])
    assert [len(p) for _, _, p in frames] == [70000] and rest == b""


def test_fragments_make_one_message_and_control_frames_none():
    messages = sio.Messages()
    assert messages.feed(False, sio.TEXT, b'42["li') is None
    assert messages.feed(True, sio.PING, b"") is None
    assert messages.feed(True, sio.CONTINUATION, b've"]') == b'42["live"]'


def event(first, last):
    readings = [{"site": "bench", "room": "r", "device": "d", "attribute": "a",
                 "ts": "2026-11-23T00:00:00.000Z", "value": seq, "unit": None}
                for seq in range(first, last + 1)]
    readings.append({"site": "oficina", "value": 7})  # not the benchmark's
    return b"42" + json.dumps(["live", {"readings": readings, "statuses": []}]).encode()


def test_events_are_told_apart_and_decoded_to_their_sequence_numbers():
    a, b = event(1000, 1499), event(2000, 2499)
    assert len(a) == len(b) and live.frame_key(a) != live.frame_key(b)
    assert live.sequences(live.socketio_event(a)) == list(range(1000, 1500))
    assert live.socketio_event(b'42["alert", {"id": 1}]') == {}


def test_send_times_of_every_nth_reading_after_the_warm_up():
    blocks = [(1, 10, 100.0), (11, 25, 100.005), (26, 40, 100.010)]
    assert live.sent_times(blocks, 10) == {10: 100.0, 20: 100.005, 30: 100.010, 40: 100.010}
    assert live.sent_times(blocks, 10, since=100.004) == {20: 100.005, 30: 100.010,
                                                           40: 100.010}


def test_latency_percentiles_come_from_half_millisecond_bins():
    lat = live.Latencies()
    for ms in range(1, 101):          # 1 .. 100 ms, once each
        lat.add(ms)
    assert (lat.n, lat.worst) == (100, 100)
    assert lat.percentile(50) == 50.5 and lat.percentile(99) == 99.5
    assert live.Latencies().percentile(99) is None


def test_latencies_pair_each_arrival_with_its_readings_send_times():
    sent = {10: 1.000, 20: 1.010}
    readings_of = {("k", 1): [10, 20]}
    lat, missing = live.latencies([(1.050, ("k", 1)), (1.060, ("other", 2))], readings_of, sent)
    assert (lat.n, missing) == (2, 1)
    assert round(lat.worst) == 50 and lat.percentile(1) == 40.5


def test_kept_events_come_back_as_they_were_written(tmp_path):
    a, b = event(1000, 1499), event(2000, 2499)
    kept = {live.frame_key(a): a, live.frame_key(b): b}
    live.keep_events(tmp_path / "events.jsonl", kept)
    assert live.kept_events(tmp_path / "events.jsonl") == kept
    assert live.kept_events(tmp_path / "none.jsonl") == {}


def test_merged_latencies_count_both():
    a, b = live.Latencies(), live.Latencies()
    a.add(10)
    b.add(10)
    b.add(30)
    a.merge(b)
    assert (a.n, a.worst, a.percentile(50), a.percentile(100)) == (3, 30, 10.5, 30.5)
