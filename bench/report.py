"""What the benchmark prints: the machine, a table of the scenarios, where the CPU went, and
the targets of BRIEF.md (Targets) marked met or NOT met."""
import json
import os
import platform
import re
import subprocess

from launcher.postgres import server_bindir
from launcher.stack import ROOT

INGEST_VS_BROKER = 0.75     # ingest ≥ 75 % of the bare broker pass-through
INGEST_VS_TUTORIAL = 8.0    # ingest ≥ 8× the tutorial flow
# On a quiet machine interrupts, the poller and kernel threads take ~10-20 % of a core
# beyond the processes measured; more than this means other work competed for the cores.
DISTURBED = 0.35


def _first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def machine():
    """[(what, value)] describing this machine and the versions of the parts."""
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1))
    cpu = re.search(r"model name\s*:\s*(.+)", open("/proc/cpuinfo").read())
    node_red = json.loads((ROOT / "nodered/node_modules/node-red/package.json").read_text())
    return [
        ("cpu", f"{os.cpu_count()} × {cpu.group(1) if cpu else '?'}"),
        ("memory", f"{mem_kib / 1024 / 1024:.1f} GiB"),
        ("kernel", platform.release()),
        ("mosquitto", _first_line(["mosquitto", "-h"])),
        ("node", _first_line(["node", "--version"])),
        ("node-red", node_red["version"]),
        ("postgresql", _first_line([str(server_bindir() / "postgres"), "--version"])),
        ("python", platform.python_version()),
    ]


def ratio_line(label, value, target, fmt):
    met = "met" if value is not None and value >= target else "NOT met"
    shown = "n/a" if value is None else fmt(value)
    return f"  {label:<34} {shown:>8}   target ≥ {fmt(target):<6} {met}"


def render(outcomes, load, machine_info=None):
    """The whole report as text, from {key: Outcome}."""
    lines = []
    if machine_info:
        lines.append("machine")
        lines += [f"  {k:<11} {v}" for k, v in machine_info]
        lines.append("")
    lines.append(f"load: {load.processes} generator processes × {load.connections} connections "
                 f"= {load.devices} devices, QoS 1, ≤ {load.window} unacknowledged per "
                 f"connection, served at most every {load.pace_ms:g} ms, bare numeric payloads "
                 f"(sequence numbers), topics bench/<room>/<device>/<attribute>")
    lines.append("")
    head = (f"{'scenario':<58} {'messages':>9} {'publish/s':>10} {'sustained/s':>11} "
            f"{'lost':>7} {'dup':>5} {'CPU-µs/msg':>10} {'Node-RED peak RSS':>17}")
    lines += [head, "-" * len(head)]
    for o in outcomes.values():
        rss = f"{o.nodered_peak_rss_kib / 1024:.0f} MiB" if o.nodered_peak_rss_kib else "-"
        lines.append(f"({o.key}) {o.title:<54} {o.messages:>9,} {o.publish_rate:>10,.0f} "
                     f"{o.rate:>11,.0f} {o.lost:>7,} {o.duplicated:>5,} "
                     f"{o.cpu_us_per_message:>10,.1f} {rss:>17}")
    lines.append("")
    lines.append("where the CPU went (CPU seconds over publish start → end; % of one core)")
    for o in outcomes.values():
        parts = [f"{name} {secs:.2f} s ({secs / o.elapsed * 100:.0f} %)"
                 for name, secs in {**o.server_cpu, **o.client_cpu}.items() if o.elapsed > 0]
        lines.append(f"  ({o.key}) {o.elapsed:.2f} s, ended {o.end}: " + ", ".join(parts))
        if o.nodered_main_thread_s is not None and o.elapsed > 0:
            lines.append(f"      Node-RED main thread (event loop): {o.nodered_main_thread_s:.2f} s "
                         f"({o.nodered_main_thread_s / o.elapsed * 100:.0f} % of one core)")
        rest = o.client_cpu.get("rest of the machine", 0.0)
        if o.elapsed > 0 and rest / o.elapsed > DISTURBED:
            lines.append(f"      DISTURBED: something outside the benchmark kept {rest / o.elapsed * 100:.0f} % "
                         f"of a core busy (other programs, or the hypervisor's steal time): "
                         f"figures lower than on a quiet machine")
        if o.db_transactions:
            # a subtransaction that writes takes an id too: 012's batch takes two
            lines.append(f"      PostgreSQL: {o.db_transactions:,} transaction ids taken (writing transactions "
                         f"and subtransactions), {o.received / o.db_transactions:,.1f} rows per id")
        if o.published != o.messages:
            lines.append(f"      only {o.published:,} of {o.messages:,} publishes were acknowledged")
        lines += [f"      {note}" for note in o.notes]
    lines.append("")
    lines.append("targets (BRIEF.md, Targets)")
    a, c = outcomes.get("a"), outcomes.get("c")
    lines.append(ratio_line("ingest / bare broker", c.rate / a.rate if a and c and a.rate else None,
                            INGEST_VS_BROKER, lambda v: f"{v * 100:.0f} %"))
    # Judged against the tutorial's best figure: with default queues the broker drops most
    # of a burst, which makes its stored rate (and so the ratio) look worse than its capacity.
    tutorials = [outcomes[k] for k in "bd" if k in outcomes and outcomes[k].rate]
    best = max(tutorials, key=lambda o: o.rate) if tutorials else None
    lines.append(ratio_line(f"ingest / tutorial flow{f' ({best.key})' if best else ''}",
                            c.rate / best.rate if best and c else None,
                            INGEST_VS_TUTORIAL, lambda v: f"{v:.1f}×"))
    if c:
        clean = c.lost == 0 and c.duplicated == 0
        lines.append(f"  {'ingest: 0 lost, 0 duplicated':<34} {c.lost:>4} / {c.duplicated:<3}"
                     f"   target 0 / 0    {'met' if clean else 'NOT met'}")
    return "\n".join(lines)
