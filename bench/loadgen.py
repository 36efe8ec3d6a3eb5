"""QoS 1 load: several processes, each holding many device connections; every message's bare
payload is a sequence number unique in the run, so the receiving end can count what is lost
or duplicated.

Device g (0-based, over all processes) publishes on `bench/room<g // 10>/dev<g>/attr<k>` the
sequence numbers g+1, g+1+G, g+1+2G, … (G devices in all), cycling through its attributes.
Each connection keeps at most `window` messages unacknowledged, like a device with a bounded
outbox; all packets are encoded before the clock starts (see wire.py).

A process serves its connections in rounds, at most one every `pace_ms` (5 ms by default):
each round reads every acknowledgement that arrived and sends what each window then allows,
like a gateway flushing its devices' outboxes. Why: the generator stands in for devices on
other machines, yet here it shares the two cores with the servers it measures. Served on
every readiness event instead, a connection found 1.3 acknowledgements per read during the
ingest, and the generator took 11–13 µs of CPU per message, a quarter of the machine;
paced at 5 ms it finds 4–8 per read and takes 4–6 µs (doc/performance.md). `pace_ms=0`
serves every event at once.
"""
import multiprocessing
import os
import selectors
import time
from array import array
from dataclasses import dataclass

from . import wire


@dataclass
class Load:
    messages: int
    processes: int = 4
    connections: int = 25          # per process: devices = processes × connections
    window: int = 100              # unacknowledged QoS 1 messages per connection
    attributes: int = 4            # per device
    pace_ms: float = 5.0           # a process serves its connections at most this often
    timeout_s: float = 300.0

    @property
    def devices(self):
        return self.processes * self.connections


@dataclass
class Target:
    host: str
    port: int
    username: str
    password: str


def topic_for(device, attribute):
    return f"bench/room{device // 10:03d}/dev{device:05d}/attr{attribute}"


def sequences_for(device, devices, messages):
    """The sequence numbers device `device` of `devices` sends, in order."""
    return range(device + 1, messages + 1, devices)


def device_stream(device, load):
    """(all of the device's PUBLISH packets as one buffer, end offset of each packet)."""
    topics = [topic_for(device, a).encode() for a in range(load.attributes)]
    parts, ends, pos = [], array("q"), 0
    for i, seq in enumerate(sequences_for(device, load.devices, load.messages)):
        packet = wire.publish_qos1(topics[i % load.attributes], str(seq).encode(), i % 65535 + 1)
        parts.append(packet)
        pos += len(packet)
        ends.append(pos)
    return b"".join(parts), ends


class Connection:
    """One device's socket and how far it got: bytes sent, messages acknowledged."""
    __slots__ = ("sock", "view", "ends", "n", "pos", "acked", "rest", "writing")

    def __init__(self, sock, stream, ends):
        self.sock, self.view, self.ends = sock, memoryview(stream), ends
        self.n, self.pos, self.acked, self.rest, self.writing = len(ends), 0, 0, b"", False

    def send_more(self, window):
        """Send what the window allows; True if the socket is full and more is allowed."""
        k = min(self.acked + window, self.n)
        limit = self.ends[k - 1] if k else 0
        if self.pos < limit:
            try:
                self.pos += self.sock.send(self.view[self.pos:limit])
            except BlockingIOError:
                pass
        return self.pos < limit

    def receive(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the broker closed a publisher's connection")
        acks, self.rest = wire.count_pubacks(self.rest + data if self.rest else data)
        self.acked += acks


def publish_all(conns, window, deadline, pace_s=0.0):
    """Drive every connection until all its messages are acknowledged, in rounds at most
    `pace_s` apart; return the time (monotonic) of the last acknowledgement."""
    sel = selectors.DefaultSelector()
    for c in conns:
        c.sock.setblocking(False)
        c.writing = c.send_more(window)
        sel.register(c.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if c.writing else 0), c)
    pending, last = sum(1 for c in conns if c.acked < c.n), time.monotonic()
    while pending:
        round_start = time.monotonic()
        if round_start > deadline:
            raise TimeoutError(f"{pending} connections still had unacknowledged messages")
        for key, mask in sel.select(1.0):
            c = key.data
            if mask & selectors.EVENT_READ and c.acked < c.n:
                c.receive()
                if c.acked == c.n:
                    pending -= 1
                    last = time.monotonic()
            writing = c.send_more(window)
            if writing != c.writing:
                c.writing = writing
                sel.modify(c.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if writing else 0), c)
        rest = pace_s - (time.monotonic() - round_start)
        if rest > 0 and pending:
            time.sleep(rest)
    sel.close()
    return last


def _publisher(index, load, target, ready, go, results):
    """One generator process: connect its devices, wait for `go`, publish, report."""
    conns = []
    try:
        for k in range(load.connections):
            device = index * load.connections + k
            stream, ends = device_stream(device, load)
            sock = wire.open_session(target.host, target.port, f"bench-dev{device:05d}",
                                     target.username, target.password)
            conns.append(Connection(sock, stream, ends))
        ready.put(("ready", index, os.getpid()))
        if not go.wait(load.timeout_s):
            raise TimeoutError("never told to start")
        last = publish_all(conns, load.window, time.monotonic() + load.timeout_s, load.pace_ms / 1000)
        results.put(("done", index, sum(c.acked for c in conns), last, None))
    except Exception as exc:  # reported to the parent, which stops the run
        results.put(("done", index, sum(c.acked for c in conns), time.monotonic(),
                     f"{type(exc).__name__}: {exc}"))
        ready.put(("failed", index, os.getpid()))
    finally:
        for c in conns:
            try:
                c.sock.setblocking(True)
                c.sock.sendall(wire.DISCONNECT)
            except OSError:
                pass
            c.sock.close()


@dataclass
class GeneratorResult:
    acked: int          # messages the broker acknowledged (PUBACK)
    started: float      # monotonic time of `go`
    finished: float     # monotonic time of the last PUBACK
    errors: list

    @property
    def rate(self):
        return self.acked / max(self.finished - self.started, 1e-9)


class LoadGenerator:
    """The generator processes: start() connects them all, go() lets them publish."""

    def __init__(self, load, target):
        self.load, self.target = load, target
        ctx = multiprocessing.get_context("fork")
        self.ready, self.results, self.go_event = ctx.Queue(), ctx.Queue(), ctx.Event()
        self.procs = [ctx.Process(target=_publisher, daemon=True,
                                  args=(i, load, target, self.ready, self.go_event, self.results))
                      for i in range(load.processes)]
        self.started = None

    @property
    def pids(self):
        return [p.pid for p in self.procs if p.pid]

    def start(self, timeout=120.0):
        """Start the processes; return once every device is connected."""
        for p in self.procs:
            p.start()
        for _ in self.procs:
            state, index, _pid = self.ready.get(timeout=timeout)
            if state != "ready":
                raise RuntimeError(f"generator process {index} failed to connect: "
                                   f"{self.results.get(timeout=5)[4]}")

    def go(self):
        self.started = time.monotonic()
        self.go_event.set()
        return self.started

    def done(self):
        """True once every process has reported."""
        return self.results.qsize() >= len(self.procs)

    def wait(self, timeout):
        """Collect the processes' reports (blocks up to `timeout`)."""
        deadline = time.monotonic() + timeout
        acked, finished, errors = 0, self.started, []
        for _ in self.procs:
            _, index, n, last, error = self.results.get(timeout=max(deadline - time.monotonic(), 0.1))
            acked += n
            finished = max(finished, last)
            if error:
                errors.append(f"process {index}: {error}")
        return GeneratorResult(acked, self.started, finished, errors)

    def stop(self):
        for p in self.procs:
            if p.is_alive():
                p.terminate()
            p.join(5)

