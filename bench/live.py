"""`./octopus bench live`: how long a reading takes from a device's publish to the browsers
following the live view (BRIEF.md, Targets: "publish → browser (Socket.IO) p99 ≤ 50 ms at
10,000 msg/s with 100 connected clients").

One run, one platform (PostgreSQL, Mosquitto, Node-RED with the project's flows, the portal,
as `./octopus up` starts them): a publisher process sends QoS 1 readings at `--rate` over
many device connections, each payload a sequence number, noting when each block of them
left; `--clients` browsers (bench/socketio_wire.py, in a few processes) follow the live
view over Socket.IO and note when each event arrived. The events are decoded after the run:
a reading's latency is its event's arrival at a browser minus its publish, for every
browser and every `--sample`-th reading.

Baseline, in the same run: an MQTT subscriber on `octopus/live` (what the portal itself
receives, and any MQTT client would): the ingest's part of the latency (its INGEST_LIVE_MS
slices; with 0, the batch's linger and its commit, doc/ingest.md), so that what the
portal's fan-out adds is the difference.
"""
import argparse
import gc
import json
import multiprocessing
import re
import selectors
import socket
import threading
import time
import zlib
from array import array
from pathlib import Path

import requests

from . import socketio_wire as sio
from . import wire
from .measure import CpuMeter
from .services import BenchStack

TARGET_P99_MS, TARGET_RATE, TARGET_CLIENTS = 50, 10_000, 100
TICK_S = 0.005  # the publisher tops up to its rate this often
WINDOW = 200    # unacknowledged QoS 1 messages per device connection
BIN_MS = 0.5    # latency histogram resolution


def parse_args(argv):
    p = argparse.ArgumentParser(prog="./octopus bench live", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=int, default=TARGET_RATE, help="readings per second "
                   f"(default {TARGET_RATE:,})")
    p.add_argument("--clients", type=int, default=TARGET_CLIENTS,
                   help=f"browsers following the live view (default {TARGET_CLIENTS})")
    p.add_argument("--seconds", type=int, default=30,
                   help="measured publishing time (default 30 s)")
    p.add_argument("--warmup", type=int, default=5,
                   help="publishing at the rate before the measured time (default 5 s): the "
                        "ingest's first batches (code not yet optimised) are not the steady state")
    p.add_argument("--devices", type=int, default=50, help="device connections (default 50)")
    p.add_argument("--sample", type=int, default=10,
                   help="measure every N-th reading's latency (default 10)")
    p.add_argument("--linger", type=int, metavar="MS",
                   help="the ingest's INGEST_LINGER_MS (default: .env.example's): how long a "
                        "batch may wait to fill, the ingest's part of the latency")
    p.add_argument("--live-ms", type=int, metavar="MS",
                   help="the ingest's INGEST_LIVE_MS (default: .env.example's): how often it "
                        "publishes what it took on octopus/live, ahead of the commit")
    p.add_argument("--keep", action="store_true", help="keep the state folder and logs")
    args = p.parse_args(argv)
    if min(args.rate, args.clients, args.seconds, args.devices, args.sample) < 1 or \
            args.warmup < 0:
        p.error("every option is a whole number ≥ 1 (--warmup ≥ 0)")
    return args


def frame_key(message):
    """What tells one live event from another, cheaply: its length and a checksum of its
    start and end, which hold its first and last readings' times and values."""
    return len(message), zlib.crc32(message[:200] + message[-200:])


# -- the browsers -----------------------------------------------------------------------------

class Browser:
    """One followed live view: its socket and the events it received, with their times."""
    __slots__ = ("sock", "rest", "messages", "times", "keys")

    def __init__(self, sock, rest):
        self.sock, self.rest, self.messages = sock, rest, sio.Messages()
        self.times, self.keys = array("d"), []

    def read(self, now, kept):
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("the portal closed a browser's connection")
        frames, self.rest = sio.split_frames(self.rest + data if self.rest else data)
        for fin, opcode, payload in frames:
            if opcode == sio.PING:
                self.sock.sendall(sio.client_frame(payload, sio.PONG))
                continue
            message = self.messages.feed(fin, opcode, payload)
            if message is None:
                continue
            if message == sio.EIO_PING.encode():
                self.sock.sendall(sio.client_frame(sio.EIO_PONG))
            elif message.startswith(sio.EVENT_PREFIX):
                key = frame_key(message)
                self.times.append(now)
                self.keys.append(key)
                if kept is not None and key not in kept:
                    kept[key] = message


def _browsers(index, count, address, cookie, keep_to, ready, stop, results):
    """A process of `count` browsers; the first process also keeps each event once (to
    `keep_to`) for the decoding after the run."""
    browsers, kept = [], ({} if keep_to else None)
    try:
        for _ in range(count):
            sock, rest = sio.open_connection(*address, cookie)
            sock.setblocking(False)
            browsers.append(Browser(sock, rest))
        ready.put(("ready", index, None))
        sel = selectors.DefaultSelector()
        for b in browsers:
            sel.register(b.sock, selectors.EVENT_READ, b)
        while not stop.is_set():
            for key, _ in sel.select(0.2):
                key.data.read(time.monotonic(), kept if key.data is browsers[0] else None)
        if keep_to:
            keep_events(Path(keep_to), kept)
        results.put(("done", index, [(b.keys, list(b.times)) for b in browsers], None))
    except Exception as exc:  # reported to the parent, which stops the run
        ready.put(("failed", index, f"{type(exc).__name__}: {exc}"))
        results.put(("done", index, [], f"{type(exc).__name__}: {exc}"))
    finally:
        for b in browsers:
            b.sock.close()


# -- the devices ------------------------------------------------------------------------------

def _publisher(address, account, rate, seconds, devices, go, results):
    """Publish `rate` readings per second for `seconds` over `devices` connections, topping
    up every TICK_S; report [(first sequence number, last, monotonic time sent)]."""
    blocks, socks, unacked, rests = [], [], [0] * devices, [b""] * devices
    try:
        for d in range(devices):
            sock = wire.open_session(*address, f"bench-live-dev{d:03d}", *account)
            sock.settimeout(None)  # blocking sends; reads with MSG_DONTWAIT
            socks.append(sock)
        topics = [f"bench/room{d // 10:02d}/dev{d:03d}/attr{a}".encode()
                  for d in range(devices) for a in range(4)]
        go.wait()
        start, sent, total, packet_id = time.monotonic(), 0, rate * seconds, 0
        while sent < total:
            now = time.monotonic()
            for d, sock in enumerate(socks):
                try:
                    data = sock.recv(65536, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    continue
                if not data:
                    raise ConnectionError("the broker closed a device's connection")
                acks, rests[d] = wire.count_pubacks(rests[d] + data)
                unacked[d] -= acks
            due = min(total, int((now - start) * rate)) - sent
            first = sent + 1
            while due > 0:
                d = sent % devices
                if unacked[d] >= WINDOW:
                    break  # that device's outbox is full: behind the rate, as a device would be
                sent += 1
                packet_id = packet_id % 65535 + 1
                topic = topics[d * 4 + (sent // devices) % 4]
                socks[d].sendall(wire.publish_qos1(topic, str(sent).encode(), packet_id))
                unacked[d] += 1
                due -= 1
            if sent >= first:
                blocks.append((first, sent, time.monotonic()))
            time.sleep(max(0.0, TICK_S - (time.monotonic() - now)))
        results.put(("published", blocks, start, time.monotonic(), None))
    except Exception as exc:
        results.put(("published", blocks, 0.0, 0.0, f"{type(exc).__name__}: {exc}"))
    finally:
        for sock in socks:
            sock.close()


# -- the baseline: octopus/live on MQTT -------------------------------------------------------

class LiveTopicWatcher:
    """An MQTT client on octopus/live (the portal's account): when each event arrived."""

    def __init__(self, address, account):
        self.sock = wire.open_session(*address, "bench-live-mqtt", *account)
        self.sock.settimeout(None)
        self.sock.sendall(wire.subscribe_packet("octopus/live", qos=0))
        self.arrivals = []   # (monotonic time, payload)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        rest = b""
        try:
            while True:
                data = self.sock.recv(1 << 20)
                if not data:
                    return
                now = time.monotonic()
                payloads, _acks, rest = wire.split_publishes(rest + data if rest else data)
                self.arrivals += [(now, p) for p in payloads]
        except OSError:
            return

    def close(self):
        self.sock.close()
        self.thread.join(5)


# -- after the run ----------------------------------------------------------------------------

def sent_times(blocks, sample, since=0.0):
    """{sequence number: monotonic time it was sent} for every `sample`-th one sent at
    `since` or later."""
    sent = {}
    for first, last, at in blocks:
        if at < since:
            continue
        for seq in range(first + (-first % sample), last + 1, sample):
            sent[seq] = at
    return sent


def sequences(event):
    """The sequence numbers among an octopus/live event's readings (the benchmark's)."""
    return [r["value"] for r in event.get("readings", ())
            if isinstance(r.get("value"), (int, float)) and r.get("site") == "bench"]


def socketio_event(message):
    """The data of a Socket.IO `live` event message (b'42["live", {...}]')."""
    name, data = json.loads(message[len(sio.EVENT_PREFIX):])
    return data if name == "live" else {}


class Latencies:
    """A histogram of latencies in BIN_MS bins: percentiles without keeping every value."""

    def __init__(self):
        self.bins, self.n, self.worst = {}, 0, 0.0

    def add(self, ms, count=1):
        b = int(ms / BIN_MS)
        self.bins[b] = self.bins.get(b, 0) + count
        self.n += count
        self.worst = max(self.worst, ms)

    def merge(self, other):
        """Count `other`'s latencies in too."""
        for b, count in other.bins.items():
            self.bins[b] = self.bins.get(b, 0) + count
        self.n += other.n
        self.worst = max(self.worst, other.worst)

    def percentile(self, p):
        """The upper edge of the bin holding the p-th percentile, in ms (None if empty)."""
        if not self.n:
            return None
        rank, seen = p / 100 * self.n, 0
        for b in sorted(self.bins):
            seen += self.bins[b]
            if seen >= rank:
                return (b + 1) * BIN_MS
        return self.worst


def latencies(arrivals, readings_of, sent):
    """Latencies of (arrival time, event key) pairs: each sampled reading of the event."""
    out, missing_events = Latencies(), 0
    for at, key in arrivals:
        seqs = readings_of.get(key)
        if seqs is None:
            missing_events += 1
            continue
        for seq in seqs:
            if seq in sent:
                out.add((at - sent[seq]) * 1000)
    return out, missing_events


# -- the run ----------------------------------------------------------------------------------

def log_in(base, user, password):
    """A portal session cookie, as a browser gets one."""
    session = requests.Session()
    page = session.get(f"{base}/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = session.post(f"{base}/login", data={"username": user, "password": password,
                                                   "csrf_token": token},
                            allow_redirects=False, timeout=10)
    if response.status_code != 302 or "session" not in session.cookies:
        raise RuntimeError(f"could not log in to the portal ({response.status_code})")
    return f"session={session.cookies['session']}"


def main(argv):
    args = parse_args(argv)
    # The benchmark's browsers and publisher note when each event arrives and each reading
    # leaves. Python's cyclic collector, once their lists of times have grown, stopped each
    # browser process for 99-173 ms, all four at once, ~35 s into a run (measured with
    # gc.callbacks): the stall showed as the portal's latency, a p99 of 240-320 ms for that
    # second. They make no reference cycles worth collecting; the processes forked below
    # inherit this. The portal's own collector is not touched: it is what is measured.
    gc.disable()
    log = lambda m: print(f"bench live: {m}", flush=True)  # noqa: E731
    stack = BenchStack("live", keep=args.keep)
    ctx = multiprocessing.get_context("fork")
    procs = []
    try:
        log(f"starting PostgreSQL, Mosquitto, Node-RED and the portal in {stack.state_dir}")
        if args.linger is None:
            args.linger = int(stack.config["INGEST_LINGER_MS"])
        if args.live_ms is None:
            args.live_ms = int(stack.config["INGEST_LIVE_MS"])
        args.batch_size = int(stack.config["INGEST_BATCH_SIZE"])
        stack.start_postgres()
        stack.migrate()
        stack.start_mosquitto()
        stack.config["INGEST_LINGER_MS"] = str(args.linger)
        stack.config["INGEST_LIVE_MS"] = str(args.live_ms)
        stack.start_nodered()
        stack.start_portal()
        portal = (stack.host, int(stack.config["PORTAL_PORT"]))
        cookie = log_in(f"http://{portal[0]}:{portal[1]}", stack.config["PORTAL_ADMIN_USER"],
                        stack.config["PORTAL_ADMIN_PASSWORD"])
        watcher = LiveTopicWatcher(stack.mqtt, stack.account("PORTAL"))

        per_process = max(1, min(25, args.clients))
        counts = [per_process] * (args.clients // per_process)
        if args.clients % per_process:
            counts.append(args.clients % per_process)
        ready, results, stop, go = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event()
        published = ctx.Queue()
        keep_to = stack.state_dir / "events.jsonl"
        for i, n in enumerate(counts):
            procs.append(ctx.Process(target=_browsers, daemon=True, args=(
                i, n, portal, cookie, str(keep_to) if i == 0 else None, ready, stop, results)))
        publisher = ctx.Process(target=_publisher, daemon=True, args=(
            stack.mqtt, stack.account("SIMULATOR"), args.rate, args.warmup + args.seconds,
            args.devices, go, published))
        procs.append(publisher)
        for p in procs:
            p.start()
        for _ in counts:
            state, index, problem = ready.get(timeout=120)
            if state != "ready":
                raise RuntimeError(f"browser process {index} failed: {problem}")
        log(f"{args.clients} browsers follow the live view; publishing {args.rate:,} readings/s "
            f"for {args.warmup} + {args.seconds} s over {args.devices} device connections")
        meter = CpuMeter({"mosquitto": [stack.pid("mosquitto")],
                          "node-red": [stack.pid("nodered")],
                          "postgres": [stack.pid("postgres")], "portal": [stack.pid("portal")],
                          "browsers": [p.pid for p in procs[:-1]],
                          "publisher": [publisher.pid]})
        go.set()
        time.sleep(args.warmup)
        before = meter.snapshot()
        _, blocks, t0, t1, problem = published.get(timeout=args.seconds * 3 + 60)
        if problem:
            raise RuntimeError(f"the publisher failed: {problem}")
        after = meter.snapshot()
        time.sleep(3)  # the last batches reach the browsers
        stop.set()
        browsers, errors = [], []
        for _ in counts:
            _, index, data, problem = results.get(timeout=60)
            browsers += data
            if problem:
                errors.append(f"process {index}: {problem}")
        watcher.close()
    finally:
        stop_all(procs)
        events = kept_events(keep_to)
        stack.close()
    if errors:
        raise RuntimeError("browser processes failed: " + "; ".join(errors))
    print()
    print(report(args, blocks, t0, t1, browsers, events, watcher.arrivals,
                 CpuMeter.delta(before, after)))
    return 0


def keep_events(path, kept):
    """Write {event key: message} as JSON, one event a line (the events are JSON text)."""
    path.write_text("".join(json.dumps([length, crc, message.decode()]) + "\n"
                            for (length, crc), message in kept.items()))


def kept_events(path):
    """{event key: message} as the first browser process kept them (empty if it did not)."""
    if not path.exists():
        return {}
    rows = (json.loads(line) for line in path.read_text().splitlines())
    return {(length, crc): message.encode() for length, crc, message in rows}


def stop_all(procs):
    for p in procs:
        if p.is_alive():
            p.terminate()
        p.join(5)


def report(args, blocks, t0, t1, browsers, events, mqtt_arrivals, cpu):
    """The figures, the baseline and the verdict, as text."""
    measured_from = t0 + args.warmup
    sent = sent_times(blocks, args.sample, measured_from)
    published = sum(last - first + 1 for first, last, at in blocks if at >= measured_from)
    window = t1 - measured_from
    rate = published / max(window, 1e-9)
    readings_of = {key: [s for s in sequences(socketio_event(m)) if s in sent]
                   for key, m in events.items()}
    browser, missing = Latencies(), 0
    reached = []
    for keys, times in browsers:
        lat, lost = latencies(zip(times, keys), readings_of, sent)
        browser.merge(lat)
        missing += lost
        reached.append(lat.n)
    # each MQTT message is its own event: keyed by its place in the arrivals
    mqtt, _ = latencies(((at, i) for i, (at, _) in enumerate(mqtt_arrivals)),
                        {i: sequences(json.loads(p)) for i, (_, p) in enumerate(mqtt_arrivals)},
                        sent)
    expected = len(sent)
    lines = [f"published {published:,} readings in {window:.1f} s after {args.warmup} s of "
             f"warm-up: {rate:,.0f}/s (asked {args.rate:,}/s), QoS 1, {args.devices} device "
             f"connections; the ingest's batches: up to {args.batch_size:,} readings or "
             f"{args.linger} ms; octopus/live: "
             + (f"every {args.live_ms} ms ahead of the commit" if args.live_ms
                else "each batch after its commit"),
             f"latency of every {args.sample}th reading, publish → arrival, in ms "
             f"(bins of {BIN_MS} ms):",
             f"{'':<44}{'readings':>12}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}"]

    def row(label, lat):
        cells = [lat.percentile(p) for p in (50, 90, 99)] + [lat.worst]
        return f"{label:<44}{lat.n:>12,}" + "".join(
            f"{c:>8.1f}" if c is not None else f"{'-':>8}" for c in cells)

    lines.append(row("baseline: MQTT octopus/live (one subscriber)", mqtt))
    lines.append(row(f"browsers: Socket.IO live view ({len(browsers)} clients)", browser))
    fewest = min(reached) if reached else 0
    lines.append(f"delivered: the browser with the fewest got {fewest / max(expected, 1):.1%} of "
                 f"the sampled readings ({fewest:,} of {expected:,}), the MQTT subscriber "
                 f"{mqtt.n / max(expected, 1):.1%}; events not recognised: {missing}")
    lines.append("CPU over the publishing window (% of one core): " + ", ".join(
        f"{name} {seconds / window:.0%}" for name, seconds in cpu.items()))
    p99 = browser.percentile(99)
    at_rate = rate >= 0.99 * TARGET_RATE and len(browsers) >= TARGET_CLIENTS
    complete = fewest >= 0.999 * expected
    met = p99 is not None and p99 <= TARGET_P99_MS and at_rate and complete
    lines += ["", "target (BRIEF.md, Targets)",
              f"  live: publish → browser p99 at {rate:,.0f} readings/s with {len(browsers)} "
              f"clients: {p99 if p99 is not None else '-'} ms   target ≤ {TARGET_P99_MS} ms at "
              f"{TARGET_RATE:,}/s with {TARGET_CLIENTS} clients, every reading delivered   "
              + ("met" if met else "NOT met" if at_rate else "not judged (not at the target's "
                 "rate and clients)")]
    return "\n".join(lines)
