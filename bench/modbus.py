"""`./octopus bench modbus`: 100 simulated OSM27 reclosers polled every second (BRIEF.md,
Targets: "100 simulated devices polled every second with no drift and one dead device
stalling nothing"). One simulator process serves them all; in one run, each phase measured
over the same window:

  (1) baseline: a bare modbus-serial poller (bench/modbus_baseline.js), same requests and
      schedule, nothing behind it: what the simulator and the machine give;
  (2) Octopus: the octopus-modbus node in Node-RED with the project's flows, readings
      published over MQTT and stored by the ingest: polls counted from the rows stored;
  (3) the same, with a dead device (nothing listens) and a hung one (accepts, never answers)
      added: the others' rate and lateness.

Rate, missed ticks, lateness and drift come from the poll times (bench/modbus_timing.py);
CPU from /proc over each window."""
import argparse
import json
import random
import resource
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from launcher.stack import port_open

from . import modbus_report, report
from .measure import CpuMeter, machine_busy_seconds, main_thread_cpu_seconds, status_kib
from .modbus_report import Phase
from .modbus_timing import COUNTERS, in_window, phase_timing, stats_delta
from .services import BENCH, BenchStack

ROOT = BENCH.parent
SITE, ROOM = "bench", "modbus"
INTERVAL_MS = 1000
PROFILE = "osm27"
PROFILE_FILE = ROOT / "modbus/profiles" / f"{PROFILE}.json"
# What the faulty devices of phase (3) are called and do (the simulator's own fault modes).
FAULTY = {"dead": ("down", "nothing listens: connection refused"),
          "hung": ("no-answer", "accepts, reads every request, never answers")}
SETTINGS = {"MODBUS_REFRESH_S": "1", "MODBUS_STATS_INTERVAL_S": "5"}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="./octopus bench modbus", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=100, help="simulated devices (default 100)")
    p.add_argument("--seconds", type=int, default=60, help="each phase's window (default 60 s)")
    p.add_argument("--warmup", type=int, default=10,
                   help="polling before each window begins (default 10 s)")
    p.add_argument("--no-faults", action="store_true",
                   help="skip phase (3), the dead and the hung device")
    p.add_argument("--keep", action="store_true", help="keep the state folder and logs")
    args = p.parse_args(argv)
    if not 1 <= args.devices <= 998 or args.seconds < 3 or args.warmup < 0:
        p.error("--devices 1..998, --seconds ≥ 3, --warmup ≥ 0")
    return args


def device_name(number):
    return f"dev{number:03d}"


# -- ports ---------------------------------------------------------------------------------------

def ephemeral_low(path="/proc/sys/net/ipv4/ip_local_port_range"):
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_range(count, low=20000, rng=random):
    """The first of `count` consecutive loopback ports that nobody uses now (each one bound to
    check), below the kernel's ephemeral range so that no outgoing connection takes one
    meanwhile."""
    high = min(ephemeral_low(), 65536) - count
    for _ in range(50):
        base = rng.randrange(low, high)
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports found between {low} and {high + count}")


# -- one measuring window ------------------------------------------------------------------------

@dataclass
class Window:
    start: float        # epoch s
    end: float
    elapsed: float      # monotonic s
    cpu: dict           # group → CPU s
    main_thread: float = None


def measure_window(groups, seconds, nodered_pid=None):
    """Sleep `seconds` while the CPU of each group of process trees is counted."""
    meter = CpuMeter(groups)
    busy, mine = machine_busy_seconds(), resource.getrusage(resource.RUSAGE_SELF)
    main = main_thread_cpu_seconds(nodered_pid) if nodered_pid else None
    before = meter.snapshot()
    start, started = time.time(), time.monotonic()
    time.sleep(seconds)
    end, elapsed = time.time(), time.monotonic() - started
    cpu = CpuMeter.delta(before, meter.snapshot())
    main_after = main_thread_cpu_seconds(nodered_pid) if nodered_pid else None
    mine_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu["bench"] = (mine_after.ru_utime + mine_after.ru_stime) - (mine.ru_utime + mine.ru_stime)
    cpu["rest of the machine"] = max(machine_busy_seconds() - busy - sum(cpu.values()), 0.0)
    return Window(start, end, elapsed, cpu,
                  main_after - main if main is not None and main_after is not None else None)


def cpu_groups(stack, extra):
    names = {"nodered": "node-red", "mosquitto": "mosquitto", "postgres": "postgres",
             "modbus-simulator": "simulator", "baseline": "baseline"}
    groups = {label: [stack.pid(name)] for name, label in names.items()
              if name in stack.supervisor.procs}
    groups.update(extra)
    return groups


# -- the database side ---------------------------------------------------------------------------

STATS_SQL = f"""
SELECT d.name, s.status, {', '.join('s.' + c for c in COUNTERS)}, s.late_ms_max, s.last_error
  FROM modbus_poll_stats s JOIN modbus_devices d ON d.id = s.device_id
 WHERE d.site = %s AND d.room = %s"""

POLLS_SQL = """
SELECT d.name, (extract(epoch FROM m.ts) * 1000)::bigint
  FROM measurements m JOIN attributes a ON a.id = m.attribute_id JOIN devices d ON d.id = a.device_id
 WHERE d.site = %s AND d.room = %s AND a.name = 'ia' AND m.ts >= to_timestamp(%s) AND m.ts < to_timestamp(%s)"""

READINGS_SQL = """
SELECT count(*) FROM measurements m JOIN attributes a ON a.id = m.attribute_id JOIN devices d ON d.id = a.device_id
 WHERE d.site = %s AND d.room = %s AND m.ts >= to_timestamp(%s) AND m.ts < to_timestamp(%s)"""


def add_devices(conn, rows):
    """[(name, port)] into modbus_devices, in order (ids follow it on a fresh database)."""
    ids = {}
    for name, port in rows:
        ids[name] = conn.execute(
            "INSERT INTO modbus_devices (site, room, name, host, port, unit_id, profile, poll_interval_ms)"
            " VALUES (%s, %s, %s, '127.0.0.1', %s, 1, %s, %s) RETURNING id",
            (SITE, ROOM, name, port, PROFILE, INTERVAL_MS)).fetchone()[0]
    return ids


def read_stats(conn):
    cur = conn.execute(STATS_SQL, (SITE, ROOM))
    columns = [c.name for c in cur.description]
    return {row[0]: dict(zip(columns, row)) for row in cur.fetchall()}


def wait_for_status(conn, names, status, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        stats = read_stats(conn)
        done = [n for n in names if (stats.get(n) or {}).get("status") == status]
        if len(done) == len(names):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: {len(done)} of {len(names)} devices {status} after "
                               f"{timeout} s (modbus_poll_stats)")
        time.sleep(1)


def stored_polls(conn, start, end, settle_s=2.0, timeout=30.0):
    """{name: [poll time, epoch ms]} stored for the window, once the ingest has caught up
    (the count no longer grows); and every reading stored for the window."""
    deadline = time.monotonic() + timeout
    time.sleep(max(0.0, end + settle_s - time.time()))
    last = None
    while True:
        count = conn.execute(READINGS_SQL, (SITE, ROOM, start, end)).fetchone()[0]
        if count == last or time.monotonic() > deadline:
            break
        last = count
        time.sleep(settle_s)
    polls = {}
    for name, ts in conn.execute(POLLS_SQL, (SITE, ROOM, start, end)):
        polls.setdefault(name, []).append(ts)
    return polls, count


# -- the phases ------------------------------------------------------------------------------

def run_baseline(stack, names, base_port, args, log):
    out = stack.state_dir / "baseline.json"
    config = {"host": "127.0.0.1", "devices": [[i + 1, base_port + i] for i in range(len(names))],
              "intervalMs": INTERVAL_MS, "timeoutMs": int(stack.config.get("MODBUS_TIMEOUT_MS") or 1000),
              "seconds": args.warmup + args.seconds + 2, "profile": str(PROFILE_FILE), "out": str(out)}
    log(f"(1) baseline: bare modbus-serial poller, {args.warmup} s warm-up + {args.seconds} s")
    proc = stack.supervisor.start("baseline", ["node", str(BENCH / "modbus_baseline.js"), json.dumps(config)],
                                  env=stack.env(), cwd=ROOT)
    try:
        time.sleep(args.warmup)
        if proc.poll() is not None:
            raise RuntimeError(f"the baseline poller exited:\n{stack.supervisor.tail('baseline')}")
        window = measure_window(cpu_groups(stack, {}), args.seconds)
        proc.wait(timeout=60)
    finally:
        stack.supervisor.stop("baseline")
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"the baseline poller failed (exit {proc.returncode}):\n"
                           f"{stack.supervisor.tail('baseline')}")
    result = json.loads(out.read_text())
    polls = {device_name(int(i)): in_window(ts, window.start, window.end)
             for i, ts in result["polls"].items()}
    phase = Phase("1", "baseline: bare modbus-serial poller, nothing behind it",
                  phase_timing(polls, names, window.end - window.start, INTERVAL_MS),
                  window.elapsed, window.cpu, poller="baseline",
                  counters={"failures": result["failures"], "overflows": result["overflows"],
                            "late_ms_max": result["lateMsMax"]})
    phase.notes += [f"baseline error: {e}" for e in result["errors"][:3]]
    return phase


def run_octopus(stack, conn, key, title, names, args, log, faulty=None):
    nodered = stack.pid("nodered")
    before = read_stats(conn)
    window = measure_window(cpu_groups(stack, {}), args.seconds, nodered_pid=nodered)
    after = read_stats(conn)
    polls, readings = stored_polls(conn, window.start, window.end)
    seconds = window.end - window.start
    phase = Phase(key, title, phase_timing(polls, names, seconds, INTERVAL_MS),
                  window.elapsed, window.cpu, poller="node-red",
                  counters=stats_delta(before, after, names), readings_per_s=readings / seconds,
                  nodered_main_s=window.main_thread,
                  nodered_rss_kib=status_kib(nodered, "VmRSS"),
                  nodered_hwm_kib=status_kib(nodered, "VmHWM"))
    if faulty:
        phase.faulty = {name: {"what": what, **(after.get(name) or {})} for name, what in faulty.items()}
    t = phase.timing
    log(f"({key}) {t.polls:,} polls stored, {t.rate:.1f}/s, {t.missed} missed, "
        f"lateness p99 {t.lateness_p99} ms")
    return phase


def start_platform(stack, base_port, count, faults, log):
    stack.config.update(SETTINGS)
    log(f"starting PostgreSQL, Mosquitto and Node-RED in {stack.state_dir}")
    stack.start_postgres()
    stack.migrate()
    stack.start_mosquitto()
    stack.start_nodered()
    argv = [sys.executable, "-m", "octopus_simulators.osm27", "--devices", str(count + len(faults)),
            "--port", str(base_port), "--host", "127.0.0.1", "--seed", "1"]
    for i, mode in enumerate(faults):
        argv += ["--fault", f"{count + i + 1}={mode}"]
    log(f"starting {count} simulated devices on ports {base_port}–{base_port + count - 1}")
    stack.supervisor.start("modbus-simulator", argv, env=stack.env(), stop_signal=signal.SIGINT)
    stack.supervisor.wait_ready("modbus-simulator",
                                lambda: port_open("127.0.0.1", base_port + count - 1), 60)


def load_line(args, base_port, faults):
    first, last = base_port, base_port + args.devices - 1
    text = (f"load: {args.devices} simulated OSM27 reclosers (python -m octopus_simulators.osm27: one "
            f"pymodbus TCP server per device, all in one process), 127.0.0.1 ports {first}–{last}; "
            f"each polled every {INTERVAL_MS:,} ms with the profile's 2 requests (input 0–14, "
            f"holding 100; 10 attributes); windows of {args.seconds} s after {args.warmup} s of "
            f"polling. Octopus: MODBUS_REFRESH_S={SETTINGS['MODBUS_REFRESH_S']}, "
            f"MODBUS_STATS_INTERVAL_S={SETTINGS['MODBUS_STATS_INTERVAL_S']}, other settings as "
            f".env.example (request timeout 800 ms at a 1 s interval).")
    if faults:
        text += (f"\n(3) adds, polled like the others: dead (port {last + 1}: "
                 f"{FAULTY['dead'][1]}) and hung (port {last + 2}: {FAULTY['hung'][1]}).")
    return text


def main(argv=None):
    args = parse_args(argv)
    log = lambda m: print(f"bench modbus: {m}", flush=True)  # noqa: E731
    # A plain `kill` must stop the simulator and the services too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    names = [device_name(i + 1) for i in range(args.devices)]
    faults = [] if args.no_faults else [FAULTY["dead"][0], FAULTY["hung"][0]]
    stack = BenchStack("modbus", keep=args.keep)
    phases, failed = [], []
    started = time.monotonic()
    try:
        base_port = free_port_range(args.devices + len(faults))
        start_platform(stack, base_port, args.devices, faults, log)
        try:
            phases.append(run_baseline(stack, names, base_port, args, log))
        except Exception as exc:  # report it, measure Octopus anyway, fail at the end
            failed.append("(1) baseline")
            log(f"(1) FAILED: {type(exc).__name__}: {exc}")
        with psycopg.connect(stack.conninfo(), autocommit=True) as conn:
            try:
                log(f"(2) Octopus: {args.devices} rows into modbus_devices; waiting for all online")
                ids = add_devices(conn, [(n, base_port + i) for i, n in enumerate(names)])
                wait_for_status(conn, names, "online", 60, "(2)")
                time.sleep(args.warmup)
                phase = run_octopus(stack, conn, "2", "Octopus: octopus-modbus → MQTT → ingest → PostgreSQL",
                                    names, args, log)
                if list(ids.values()) != list(range(1, len(names) + 1)):
                    phase.notes.append("device ids are not 1..N: phases differ from the baseline's")
                phases.append(phase)
            except Exception as exc:
                failed.append("(2) Octopus")
                log(f"(2) FAILED: {type(exc).__name__}: {exc}")
            if faults and "(2) Octopus" not in failed:
                try:
                    last = base_port + args.devices - 1
                    log("(3) adding a dead and a hung device; waiting for both offline")
                    add_devices(conn, [("dead", last + 1), ("hung", last + 2)])
                    wait_for_status(conn, ["dead", "hung"], "offline", 60, "(3)")
                    time.sleep(args.warmup)
                    phases.append(run_octopus(
                        stack, conn, "3", f"Octopus, + a dead and a hung device (the {args.devices} others)",
                        names, args, log,
                        faulty={name: what for name, (_, what) in FAULTY.items()}))
                except Exception as exc:
                    failed.append("(3) faults")
                    log(f"(3) FAILED: {type(exc).__name__}: {exc}")
        if any(p.poller == "node-red" for p in phases):
            errors = [line for line in stack.supervisor.tail("nodered", 1000).splitlines()
                      if "[error]" in line or ("[warn]" in line and "[octopus-" in line)]
            if errors:
                phases[-1].notes.append(f"Node-RED logged {len(errors)} warning(s)/error(s); last: "
                                        f"{errors[-1].strip()[:200]}")
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        return 130
    except Exception as exc:
        log(f"FAILED: {type(exc).__name__}: {exc}")
        return 1
    finally:
        stack.close()
        log(f"done in {time.monotonic() - started:.0f} s; every process stopped"
            + (f", logs kept in {stack.state_dir / 'log'}" if args.keep else ""))
    if phases:
        print()
        print(modbus_report.render(phases, load_line(args, base_port, faults), report.machine()))
    if failed:
        print(f"\nphases that failed to measure: {', '.join(failed)}")
        return 1
    return 0 if phases else 1


if __name__ == "__main__":
    sys.exit(main())
