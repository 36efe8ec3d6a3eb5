"""The three scenarios, each on a fresh broker (and database and Node-RED), same load generator:
(a) bare broker pass-through, (b) the usual tutorial flow, (c) Octopus's ingest."""
import dataclasses
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from launcher import postgres
from launcher.stack import free_port

from . import nodeprofile, wire
from .loadgen import LoadGenerator, Target
from .measure import CpuMeter, machine_busy_seconds, main_thread_cpu_seconds, status_kib
from .services import BENCH, BenchStack
from .sinks import PROBE, SubscriberSink, TableSink

TUTORIAL_TABLE = """
CREATE TABLE bench_tutorial (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic       text NOT NULL,
    value       double precision,
    received_at timestamptz NOT NULL DEFAULT now()
)"""


@dataclass
class Options:
    timeout_s: float = 300.0     # the longest any one phase may take
    stall_s: float = 10.0        # after publishing, stop waiting once nothing arrived for this long
    keep: bool = False           # keep each scenario's state folder (logs, data)
    profile_dir: Path = None     # write a CPU profile of Node-RED during (c) here
    profile_path: Path = None    # where it was written


@dataclass
class Outcome:
    key: str
    title: str
    messages: int
    published: int               # acknowledged by the broker (PUBACK)
    publish_rate: float          # the generator's own rate: publish start → last PUBACK
    received: int                # copies that reached the end (table rows / subscriber)
    distinct: int                # distinct sequence numbers among them
    elapsed: float               # publish start → last row stored / last message received
    end: str                     # complete | stalled | timeout
    server_cpu: dict             # process group → CPU seconds over the run
    client_cpu: dict
    nodered_peak_rss_kib: int = None
    nodered_main_thread_s: float = None
    db_transactions: int = None  # transaction ids PostgreSQL handed out meanwhile (subtransactions too)
    notes: list = field(default_factory=list)

    @property
    def lost(self):
        return self.messages - self.distinct

    @property
    def duplicated(self):
        return self.received - self.distinct

    @property
    def rate(self):
        return self.distinct / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def cpu_us_per_message(self):
        return sum(self.server_cpu.values()) / max(self.distinct, 1) * 1e6


# -- how each scenario starts its services and what it counts ------------------------------

def start_bare_broker(stack, n, options):
    stack.start_mosquitto()
    return SubscriberSink(stack, n)


def start_tutorial(stack, n, options, default_queues=True):
    stack.start_postgres()
    stack.migrate()
    with psycopg.connect(host=stack.config["PGHOST"], port=stack.config["PGPORT"],
                         dbname=stack.config["PGDATABASE"], user=stack.config["PGUSER"],
                         password=stack.config["PGPASSWORD"], autocommit=True) as conn:
        conn.execute(TUTORIAL_TABLE)
        # the tutorial flow connects with Node-RED's PG* variables, i.e. Node-RED's own role
        conn.execute(psycopg.sql.SQL("GRANT INSERT ON bench_tutorial TO {}").format(
            psycopg.sql.Identifier(postgres.FLOWS_GROUP)))
    if default_queues:
        stack.start_mosquitto_with_default_queues()
    else:
        stack.start_mosquitto()
    stack.start_nodered_with(BENCH / "tutorial_settings.js", BENCH / "flows" / "tutorial.json")
    return TableSink(stack, n, "bench_tutorial", "value")


def start_tutorial_large_queues(stack, n, options):
    return start_tutorial(stack, n, options, default_queues=False)


def start_octopus(stack, n, options):
    stack.start_postgres()
    stack.migrate()
    stack.start_mosquitto()
    if options.profile_dir:
        stack.inspector_port = free_port()
        stack.config["NODE_OPTIONS"] = f"--inspect=127.0.0.1:{stack.inspector_port}"
    stack.start_nodered()   # nodered/settings.js and flows/octopus.json, as `./octopus up` does
    stack.config.pop("NODE_OPTIONS", None)
    return TableSink(stack, n, "measurements", "num")


SCENARIOS = {
    "a": ("bare broker pass-through (discarding QoS 1 subscriber)", start_bare_broker),
    "b": ("tutorial flow: mqtt in -> 1 INSERT/msg, default queues", start_tutorial),
    # The same flow behind Octopus's broker settings: the broker drops nothing, so this is
    # what the flow can store at best; the ratio to the ingest is judged against it.
    "d": ("tutorial flow, Octopus's broker queue limits", start_tutorial_large_queues),
    "c": ("Octopus ingest (flows/octopus.json)", start_octopus),
}


def server_groups(stack):
    names = {"mosquitto": "mosquitto", "nodered": "node-red", "postgres": "postgres"}
    return {label: [stack.pid(name)] for name, label in names.items()
            if name in stack.supervisor.procs}


# -- one run ----------------------------------------------------------------------------------

def warm_up(stack, sink, timeout):
    """Publish a probe until it reaches the sink: the consumer is subscribed and writing."""
    user, password = stack.account("SIMULATOR")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wire.publish_once(*stack.mqtt, user, password, "bench/warmup/probe/value",
                          str(PROBE).encode())
        for _ in range(10):
            if sink.probed:
                return
            time.sleep(0.1)
    raise TimeoutError(f"the warm-up message did not arrive within {timeout:.0f} s")


def wait_for_sink(sink, n, generator, deadline, stall_s):
    """Poll until all n arrived, nothing arrived for stall_s after publishing, or deadline."""
    checked = None
    while True:
        count, last = sink.progress()
        now = time.monotonic()
        if count >= n and count != checked:   # enough copies: are they n distinct ones?
            checked = count
            if sink.final()[1] >= n:
                return last, "complete"
        if now > deadline:
            return last, "timeout"
        if generator.done() and now - max(last or 0, generator.started) > stall_s:
            return last, "stalled"
        time.sleep(0.01)


def run(key, load, options, log=print):
    """Run one scenario on fresh services; always stops what it started."""
    title, start = SCENARIOS[key]
    stack = BenchStack(key, keep=options.keep)
    sink = generator = None
    try:
        log(f"[{key}] starting services in {stack.state_dir}")
        sink = start(stack, load.messages, options)
        warm_up(stack, sink, 60)
        generator = LoadGenerator(load, Target(*stack.mqtt, *stack.account("SIMULATOR")))
        generator.start()
        servers = server_groups(stack)
        meter = CpuMeter({**servers, "generator": generator.pids, "subscriber": sink.pids},
                         exclude=sink.excluded_pids)
        node_pid = servers.get("node-red", [None])[0]
        main_before = main_thread_cpu_seconds(node_pid) if node_pid else None
        profiler = None
        if stack.inspector_port:
            profiler = nodeprofile.InspectorProfiler(stack.inspector_port)
            profiler.start()
        xid_before = sink.next_xid() if hasattr(sink, "next_xid") else None
        busy_before = machine_busy_seconds()
        before, self_before = meter.snapshot(), resource.getrusage(resource.RUSAGE_SELF)
        log(f"[{key}] publishing {load.messages:,} messages: {load.processes} processes x "
            f"{load.connections} connections, QoS 1, window {load.window}")
        started = generator.go()
        deadline = started + options.timeout_s
        last, end = wait_for_sink(sink, load.messages, generator, deadline, options.stall_s)
        cpu = CpuMeter.delta(before, meter.snapshot())
        busy = machine_busy_seconds() - busy_before
        self_after = resource.getrusage(resource.RUSAGE_SELF)
        main_after = main_thread_cpu_seconds(node_pid) if node_pid else None
        if profiler:
            options.profile_path = profiler.stop(options.profile_dir / f"nodered-{key}.cpuprofile")
        xid_after = sink.next_xid() if xid_before is not None else None
        gen = generator.wait(max(deadline - time.monotonic(), 10))
        received, distinct = sink.final()
        cpu["bench (counting)"] = (self_after.ru_utime + self_after.ru_stime
                                   - self_before.ru_utime - self_before.ru_stime)
        # Whatever else kept the cores busy: interrupts, the poller's backend, other programs
        # on this machine (a figure taken while other work ran is worth less).
        cpu["rest of the machine"] = max(busy - sum(cpu.values()), 0.0)
        client_keys = ("generator", "subscriber", "bench (counting)", "rest of the machine")
        outcome = Outcome(
            key=key, title=title, messages=load.messages, published=gen.acked,
            publish_rate=gen.rate, received=received, distinct=distinct,
            elapsed=(last or started) - started, end=end,
            server_cpu={k: v for k, v in cpu.items() if k not in client_keys},
            client_cpu={k: v for k, v in cpu.items() if k in client_keys and v > 0},
            notes=list(gen.errors))
        if getattr(sink, "error", None):
            outcome.notes.append(f"subscriber: {sink.error}")
        if xid_before is not None:
            outcome.db_transactions = xid_after - xid_before
        if node_pid:
            outcome.nodered_peak_rss_kib = status_kib(node_pid, "VmHWM")
            if main_before is not None and main_after is not None:
                outcome.nodered_main_thread_s = main_after - main_before
        log(f"[{key}] {end}: {distinct:,} of {load.messages:,} in {outcome.elapsed:.2f} s")
        return outcome
    finally:
        if sink:
            sink.close()
        if generator:
            generator.stop()
        stack.close()


def scaled(load, messages):
    return dataclasses.replace(load, messages=messages)
