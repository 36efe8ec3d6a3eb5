"""What `./octopus bench modbus` prints: the machine, the load, a table of the phases (rate,
missed ticks, lateness, drift), where the CPU went, octopus-modbus's own counters, and the
Modbus target of BRIEF.md marked met or NOT met."""
from dataclasses import dataclass, field

from . import report

DISTURBED = report.DISTURBED
TARGET = "Modbus: 100 simulated devices polled every second with no drift and one dead device stalling nothing"
RATE_SHARE = 0.995          # "polled every second": ≥ 99.5 % of the window's ticks stored...
MISSED_MAX = 0              # ...and no tick without a poll
DRIFT_MAX_MS_PER_MIN = 5.0  # a timer re-armed after each poll drifts ≥ 1 ms a tick: ≥ 60 ms/min
# A poller that waited for the hung device would be late by its request timeout (800 ms at a
# 1 s interval); 100 ms is an eighth of that and well above a busy event loop's jitter.
STALL_MS = 100
PLATFORM = ("node-red", "mosquitto", "postgres")


@dataclass
class Phase:
    key: str                    # "1", "2", "3": the order they ran in
    title: str
    timing: object              # modbus_timing.PhaseTiming of the healthy devices
    elapsed: float              # the window's wall time, s
    cpu: dict                   # group → CPU seconds over the window
    poller: str                 # the group that does the polling: "baseline" or "node-red"
    counters: dict = None       # the poller's own counters over the window (stats_delta, or the baseline's)
    faulty: dict = None         # name → what happened to a faulty device ({status, polls, …})
    readings_per_s: float = None    # every attribute stored per second (Octopus phases)
    nodered_main_s: float = None    # Node-RED's main thread (event loop) CPU over the window
    nodered_rss_kib: int = None
    nodered_hwm_kib: int = None
    notes: list = field(default_factory=list)


def pct(seconds, elapsed):
    return f"{seconds / elapsed * 100:.1f} %" if elapsed else "-"


def num(value, fmt="{:,.0f}"):
    return "-" if value is None else fmt.format(value)


def table(phases):
    head = (f"{'phase':<58} {'polls':>6} {'polls/s':>8} {'per device':>10} {'missed':>6} "
            f"{'lateness ms p50':>15} {'p99':>5} {'max':>5} {'drift ms/min':>12} {'worst':>6}")
    lines = [head, "-" * len(head)]
    for p in phases:
        t = p.timing
        lines.append(
            f"({p.key}) {p.title:<54} {t.polls:>6,} {t.rate:>8.1f} "
            f"{f'{t.per_device_min}–{t.per_device_max}':>10} {t.missed:>6,} "
            f"{num(t.lateness_p50):>15} {num(t.lateness_p99):>5} {num(t.lateness_max):>5} "
            f"{num(t.drift_median, '{:+.1f}'):>12} {num(t.drift_worst, '{:+.1f}'):>6}")
    lines.append("")
    lines.append("polls: of the healthy devices, with a poll time in the window (Octopus: rows of "
                 "attribute ia stored in PostgreSQL); per device: fewest–most. missed: ticks "
                 "without a poll between a device's first and last poll in the window. lateness: "
                 "a poll's time (its first request sent) after its device's fixed schedule, the "
                 "device's least late poll taken as on time. drift: how fast that lateness grows "
                 "(Theil–Sen slope over the window), median over devices and the worst one.")
    for p in phases:
        t = p.timing
        extra = []
        if t.silent:
            extra.append(f"{len(t.silent)} device(s) without a single poll: {', '.join(t.silent[:5])}")
        if t.doubled:
            extra.append(f"{t.doubled} poll(s) less than half an interval after the previous one")
        if t.lateness_max is not None and t.lateness_max >= STALL_MS:
            extra.append(f"latest poll: {t.worst_late_device}, {t.lateness_max:,.0f} ms")
        lines += [f"  ({p.key}) {e}" for e in extra + p.notes]
    return lines


def cpu_lines(phases):
    lines = ["where the CPU went over each window (% of one core; µs of CPU per poll)"]
    baseline = next((p for p in phases if p.poller == "baseline"), None)
    for p in phases:
        polls = max(p.timing.polls, 1)
        parts = []
        for name, secs in p.cpu.items():
            text = f"{name} {pct(secs, p.elapsed)}"
            if name in (p.poller, "simulator") or (p.poller == "node-red" and name in PLATFORM):
                text += f" ({secs / polls * 1e6:,.0f} µs/poll)"
            parts.append(text)
        lines.append(f"  ({p.key}) {p.elapsed:.1f} s: " + ", ".join(parts))
        if p.nodered_main_s is not None and p.poller == "node-red":
            lines.append(f"      Node-RED main thread (event loop): {pct(p.nodered_main_s, p.elapsed)} of one core")
        if p.poller == "node-red":
            platform = sum(p.cpu.get(k, 0.0) for k in PLATFORM)
            line = (f"      the platform (Node-RED + Mosquitto + PostgreSQL): {pct(platform, p.elapsed)}, "
                    f"{platform / polls * 1e6:,.0f} µs/poll")
            if baseline and baseline.cpu.get("baseline"):
                bare = baseline.cpu["baseline"] / max(baseline.timing.polls, 1) * 1e6
                line += f" ({platform / polls * 1e6 / bare:,.1f}× the bare poller's {bare:,.0f} µs/poll)"
            lines.append(line)
        if p.readings_per_s is not None:
            lines.append(f"      readings stored: {p.readings_per_s:,.0f}/s (every attribute of every "
                         f"device, through MQTT and the ingest)")
        if p.nodered_rss_kib:
            lines.append(f"      Node-RED RSS {p.nodered_rss_kib / 1024:.0f} MiB at the end, peak "
                         f"{p.nodered_hwm_kib / 1024:.0f} MiB since it started")
        rest = p.cpu.get("rest of the machine", 0.0)
        if p.elapsed and rest / p.elapsed > DISTURBED:
            lines.append(f"      DISTURBED: something outside the benchmark kept {rest / p.elapsed * 100:.0f} % "
                         f"of a core busy: figures worse than on a quiet machine")
    return lines


def counter_lines(phases):
    lines = ["the pollers' own counters over the window"]
    for p in phases:
        c = p.counters
        if c is None:
            continue
        if p.poller == "baseline":
            lines.append(f"  ({p.key}) over its whole run, warm-up included: {c['failures']:,} failures, "
                         f"{c['overflows']:,} overflows (ticks skipped, the previous poll still running), "
                         f"timer lateness at most {c['late_ms_max']} ms")
            continue
        lines.append(f"  ({p.key}) {c['polls']:,} polls, {c['ok']:,} ok, {c['failures']:,} failures "
                     f"({c['timeouts']} timeouts, {c['exceptions']} exceptions, {c['connection_errors']} "
                     f"connection errors, {c['garbage']} garbage), {c['overflows']:,} overflows; "
                     f"{c['online']} of {p.timing.devices} online; late_ms_max {num(c['late_ms_max'])} ms "
                     f"(worst timer lateness since polling began)")
        for name, f in (p.faulty or {}).items():
            lines.append(f"      {name} ({f['what']}): {f.get('status') or 'not polled yet'}, "
                         f"{f.get('polls', 0):,} polls, {f.get('ok', 0):,} ok, "
                         f"{f.get('timeouts', 0):,} timeouts, {f.get('connection_errors', 0):,} "
                         f"connection errors; last error: {f.get('last_error') or '-'}")
    lines.append("  (Octopus: modbus_poll_stats as flushed every MODBUS_STATS_INTERVAL_S, read at the "
                 "window's start and end: the window give or take one flush; dead and hung devices: "
                 "since they were added)")
    return lines


def verdict(ok):
    return "met" if ok else "NOT met"


def every_second(t):
    """Whether a phase polled every device at every tick of its window."""
    return (t.polls >= RATE_SHARE * t.expected_polls and t.missed <= MISSED_MAX
            and not t.silent)


def drift_limit(t):
    """The drift target for a window: ±DRIFT_MAX_MS_PER_MIN, or three times the resolution
    if a short window cannot tell that much (poll times are whole ms; 1 ms over a third of
    the window, about the typical distance between two polls of a pair, is 90 / window_s ms
    per minute)."""
    return max(DRIFT_MAX_MS_PER_MIN, 3 * drift_resolution(t))


def drift_resolution(t):
    return 90 / t.window_s if t.window_s else float("inf")


def no_drift(t):
    return t.drift_worst is not None and abs(t.drift_worst) <= drift_limit(t)


def not_stalled(t):
    return every_second(t) and t.lateness_max is not None and t.lateness_max < STALL_MS


def target_lines(phases):
    by = {p.poller if p.poller == "baseline" else ("faults" if p.faulty else "octopus"): p
          for p in phases}
    lines = [f"targets (BRIEF.md, Targets: \"{TARGET}\")"]

    def rate_text(t):
        return (f"{t.rate:.1f} polls/s of {t.expected_rate:g} ({t.polls / t.expected_polls * 100:.1f} %), "
                f"{t.missed} missed")

    for key, label in (("octopus", "Octopus"), ("baseline", "baseline, same yardstick")):
        p = by.get(key)
        if not p:
            continue
        t = p.timing
        lines.append(f"  ({p.key}) {label}: polled every second: {rate_text(t)}"
                     f"   target ≥ {RATE_SHARE * 100:g} %, 0 missed   {verdict(every_second(t))}")
        lines.append(f"  ({p.key}) {label}: no drift: worst device {num(t.drift_worst, '{:+.1f}')} ms/min "
                     f"(resolution {drift_resolution(t):.1f})   target within ±{drift_limit(t):g} ms/min"
                     f"   {verdict(no_drift(t))}")
    p = by.get("faults")
    if p:
        t = p.timing
        calm = by.get("octopus")
        before = f" ((2): {num(calm.timing.lateness_max)} ms, p99 {num(calm.timing.lateness_p99)})" if calm else ""
        lines.append(f"  ({p.key}) a dead and a hung device stall nothing: the others {rate_text(t)}, "
                     f"latest poll {num(t.lateness_max)} ms, p99 {num(t.lateness_p99)}{before}"
                     f"   target ≥ {RATE_SHARE * 100:g} %, 0 missed, every poll < {STALL_MS} ms late"
                     f"   {verdict(not_stalled(t))}")
    return lines


def render(phases, load_line, machine_info=None):
    """The whole report as text."""
    lines = []
    if machine_info:
        lines.append("machine")
        lines += [f"  {k:<11} {v}" for k, v in machine_info]
        lines.append("")
    lines += [load_line, ""]
    lines += table(phases)
    lines.append("")
    lines += cpu_lines(phases)
    lines.append("")
    lines += counter_lines(phases)
    lines.append("")
    lines += target_lines(phases)
    return "\n".join(lines)
