"""What the Modbus benchmark computes from poll times (epoch ms, one per poll and device):
the rate, the ticks missed, how late each poll was and whether that lateness grows (drift);
and the modbus_poll_stats counters over a window. Plain functions, no I/O."""
import statistics
from dataclasses import dataclass, field

COUNTERS = ("polls", "ok", "timeouts", "exceptions", "connection_errors", "garbage", "overflows")
FAILURES = ("timeouts", "exceptions", "connection_errors", "garbage")


@dataclass
class DeviceTiming:
    """One device's polls in a window, against its own schedule (tick k at first + k × interval)."""
    polls: int
    missed: int = 0             # ticks between the first poll and the last without a poll
    doubled: int = 0            # polls less than half an interval after the previous one
    lateness_ms: list = field(default_factory=list)   # per poll, ≥ 0
    drift_ms_per_min: float = None   # how fast the offsets from the schedule grow


def device_timing(ts_ms, interval_ms):
    """A DeviceTiming from one device's poll times.

    The schedule is unknown from outside, so each poll is placed on the tick nearest to
    where a fixed schedule through the first poll puts it, k = round((t − first) / interval),
    and its offset is t − k × interval. The least late poll is taken as on time: lateness is
    the offset minus the smallest offset, so it is ≥ 0 and the device's phase cancels out.

    A schedule that drifts (a timer re-armed after each poll adds its own lateness every
    tick) shows as offsets that grow steadily. The drift is their Theil–Sen slope (the median
    of the slopes between every two polls), in ms per minute: one late poll (a garbage
    collection, a stats flush) near an end does not pass for drift, as it would in a
    least-squares slope, and whole-millisecond times blur it less than comparing medians of
    the window's first and last part."""
    ts = sorted(ts_ms)
    if not ts:
        return DeviceTiming(polls=0)
    first = ts[0]
    ticks = [round((t - first) / interval_ms) for t in ts]
    offsets = [t - k * interval_ms for t, k in zip(ts, ticks)]
    base = min(offsets)
    timing = DeviceTiming(polls=len(ts), lateness_ms=[o - base for o in offsets])
    timing.missed = sum(max(b - a - 1, 0) for a, b in zip(ticks, ticks[1:]))
    timing.doubled = sum(1 for a, b in zip(ticks, ticks[1:]) if b == a)
    if len(ts) >= 3:
        timing.drift_ms_per_min = theil_sen(ts, offsets) * 60_000
    return timing


def theil_sen(xs, ys, most=200):
    """The median slope between every two points of distinct x (0 if there are none); over
    `most` points evenly picked when there are more, so that a long window stays quick."""
    step = -(-len(xs) // most)   # ceil
    xs, ys = xs[::step], ys[::step]
    slopes = [(ys[j] - ys[i]) / (xs[j] - xs[i])
              for i in range(len(xs)) for j in range(i + 1, len(xs)) if xs[j] != xs[i]]
    return statistics.median(slopes) if slopes else 0.0


def percentile(values, p):
    """The nearest-rank p-th percentile (p in 0..100) of `values`; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))   # ceil(n × p / 100)
    return ordered[int(rank) - 1]


@dataclass
class PhaseTiming:
    """Every expected device's polls in one measuring window, summed up."""
    devices: int                # expected
    window_s: float
    interval_ms: int
    polls: int
    per_device_min: int
    per_device_max: int
    silent: list                # expected devices without a single poll
    missed: int
    doubled: int
    lateness_p50: float = None
    lateness_p99: float = None
    lateness_max: float = None
    worst_late_device: str = None
    drift_median: float = None  # ms per minute, over devices
    drift_worst: float = None   # the largest in absolute value, signed
    worst_drift_device: str = None

    @property
    def expected_polls(self):
        return self.devices * self.window_s * 1000 / self.interval_ms

    @property
    def rate(self):
        return self.polls / self.window_s if self.window_s else 0.0

    @property
    def expected_rate(self):
        return self.devices * 1000 / self.interval_ms


def in_window(ts_ms, start_s, end_s):
    """The poll times within [start_s, end_s) (epoch seconds)."""
    lo, hi = start_s * 1000, end_s * 1000
    return [t for t in ts_ms if lo <= t < hi]


def phase_timing(polls_by_device, devices, window_s, interval_ms):
    """A PhaseTiming over the `devices` (names) expected, from {name: [poll time, epoch ms]}
    already cut to the window; devices not expected are left out."""
    per = {name: device_timing(polls_by_device.get(name, []), interval_ms) for name in devices}
    counts = [t.polls for t in per.values()] or [0]
    lateness = [(v, name) for name, t in per.items() for v in t.lateness_ms]
    drifts = [(name, t.drift_ms_per_min) for name, t in per.items() if t.drift_ms_per_min is not None]
    out = PhaseTiming(
        devices=len(devices), window_s=window_s, interval_ms=interval_ms, polls=sum(counts),
        per_device_min=min(counts), per_device_max=max(counts),
        silent=[name for name, t in per.items() if not t.polls],
        missed=sum(t.missed for t in per.values()), doubled=sum(t.doubled for t in per.values()))
    if lateness:
        values = [v for v, _ in lateness]
        out.lateness_p50, out.lateness_p99 = percentile(values, 50), percentile(values, 99)
        out.lateness_max, out.worst_late_device = max(lateness)
    if drifts:
        out.drift_median = statistics.median(v for _, v in drifts)
        out.worst_drift_device, out.drift_worst = max(drifts, key=lambda d: abs(d[1]))
    return out


def stats_delta(before, after, devices):
    """modbus_poll_stats between two readings ({name: row dict}) for `devices`: counters
    summed, late_ms_max the largest at the end (it is kept since polling began), and how many
    were online at the end. A device that has no row yet counts from zero."""
    total = {name: 0 for name in COUNTERS}
    late, online = None, 0
    for name in devices:
        end = after.get(name)
        if not end:
            continue
        start = before.get(name) or {}
        for counter in COUNTERS:
            total[counter] += (end.get(counter) or 0) - (start.get(counter) or 0)
        if end.get("late_ms_max") is not None:
            late = max(late or 0, end["late_ms_max"])
        online += end.get("status") == "online"
    total["failures"] = sum(total[k] for k in FAILURES)
    total["late_ms_max"] = late
    total["online"] = online
    return total
