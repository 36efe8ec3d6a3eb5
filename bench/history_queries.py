"""What the history benchmark times: the portal's own calls (webapp/octopus_portal/history.py)
and, as baselines, the same answers computed from raw rows; their plans; whether they agree."""
import math
import random
import re
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from octopus_portal import history

CHART_SPAN = timedelta(days=7)
AGGREGATE_SPAN = timedelta(days=1)
ATTRIBUTE = "temperatura"
ALL_DEVICES = "bench/#"           # a whole site: group_minute answers
ONE_ROOM_ANY_SITE = "+/room01/+"  # a room of any site: no group, per-attribute rollups
LIVE_MINUTES = 2                  # minutes not yet rolled up while the ingest runs

# The baselines: a chart and an aggregate without rollups, from raw rows, same answer (mean,
# min, max, count, and the devices with the min and the max).
RAW_CHART_SQL = """
SELECT minute_of(ts) AS ts, avg(num) AS mean, min(num) AS min, max(num) AS max, count(*) AS n
  FROM measurements
 WHERE attribute_id = %(id)s AND ts >= %(start)s AND ts < %(end)s AND num IS NOT NULL
 GROUP BY 1 ORDER BY 1"""
RAW_AGGREGATE_SQL = """
SELECT minute_of(m.ts) AS minute, avg(m.num) AS mean, min(m.num) AS min, max(m.num) AS max,
       count(*) AS n,
       -(min(ARRAY[m.num, -a.device_id::float8]))[2]::integer AS min_device_id,
       (max(ARRAY[m.num, a.device_id::float8]))[2]::integer AS max_device_id
  FROM measurements m JOIN attributes a ON a.id = m.attribute_id
 WHERE m.attribute_id = ANY (%(ids)s) AND m.ts >= %(start)s AND m.ts < %(end)s
   AND m.num IS NOT NULL
 GROUP BY 1 ORDER BY 1"""


class WithoutGroup(history.Selection):
    """A selection answered from the per-attribute rollups even where a group matches it: the
    path of any pattern that is not a whole site or room, measured on the same devices."""

    def group(self):
        return None


class Recorder:
    """A connection that remembers the statements run through execute() (to EXPLAIN them)."""

    def __init__(self, conn):
        self.conn = conn
        self.statements = []

    def execute(self, sql, params=None):
        self.statements.append((sql, params))
        return self.conn.execute(sql, params)

    def __getattr__(self, name):
        return getattr(self.conn, name)


@dataclass
class Case:
    """One measured call: `run(conn, i)` makes the i-th call and returns its rows."""
    key: str
    title: str
    run: object
    target_ms: float = None      # judged against this (p95 of the warm calls); None: not judged
    slow: bool = False           # repeated --slow-repeat times instead of --repeat
    pending: int = 0             # minutes left not rolled up meanwhile (the live state)


@dataclass
class Timing:
    case: Case
    first_ms: float = None                # first call on a new connection after a restart
    runs_ms: list = field(default_factory=list)
    rows: int = 0
    others_cpu: float = 0.0               # other programs' CPU meanwhile, in cores
    result: list = None                   # the last call's rows

    @property
    def median_ms(self):
        return statistics.median(self.runs_ms)

    @property
    def p95_ms(self):
        return percentile(self.runs_ms, 95)

    @property
    def verdict(self):
        if self.case.target_ms is None:
            return ""
        return "met" if self.p95_ms <= self.case.target_ms else "NOT met"


def percentile(values, p):
    """The p-th percentile, nearest rank (of 20 runs, p95 is the 19th fastest)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * p / 100)) - 1]


def timed(fn):
    """(ms, result) of one call."""
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


def chart_attribute(attribute_ids):
    """The attribute of the chart: one in the middle (room06)."""
    return attribute_ids[len(attribute_ids) // 2]


def cases(end, attribute_ids):
    """The calls to time, given the data's end and the attribute ids of ATTRIBUTE (all
    devices, in device order)."""
    chart_from, day_from = end - CHART_SPAN, end - AGGREGATE_SPAN
    one = chart_attribute(attribute_ids)
    others = random.Random(4).sample(list(attribute_ids), min(20, len(attribute_ids)))
    all_devices = history.Selection.devices_and_attribute(ALL_DEVICES, ATTRIBUTE)
    one_room = history.Selection.devices_and_attribute(ONE_ROOM_ANY_SITE, ATTRIBUTE)
    ids, n = list(attribute_ids), len(attribute_ids)
    day = {"start": day_from, "end": end, "ids": ids}

    def chart(c, i):
        return history.series(c, one, chart_from, end, "minute")

    def aggregate(c, i):
        return history.aggregate(c, all_devices, day_from, end)
    return [
        Case("chart", "7-day per-minute chart of one attribute (history.series)", chart,
             target_ms=100),
        Case("chart-others", "  the same, another attribute each call",
             lambda c, i: history.series(c, others[i % len(others)], chart_from, end, "minute"),
             target_ms=100),
        Case("chart-live", f"  the same, last {LIVE_MINUTES} minutes not yet rolled up", chart,
             pending=LIVE_MINUTES),
        Case("chart-raw", "  baseline: the same chart from raw rows",
             lambda c, i: c.execute(RAW_CHART_SQL, {"id": one, "start": chart_from, "end": end}).fetchall(),
             slow=True),
        Case("aggregate", f"24-h aggregate of {n:,} devices, '{ALL_DEVICES}' (group_minute)",
             aggregate, target_ms=200),
        Case("aggregate-live", f"  the same, last {LIVE_MINUTES} minutes not yet rolled up",
             aggregate, pending=LIVE_MINUTES),
        Case("aggregate-attributes", f"  the same {n:,} devices, per-attribute rollups",
             lambda c, i: history.aggregate(c, WithoutGroup(all_devices.levels), day_from, end),
             target_ms=200, slow=True),
        Case("aggregate-room", f"  '{ONE_ROOM_ANY_SITE}', {n // 10:,} devices, per-attribute rollups",
             lambda c, i: history.aggregate(c, one_room, day_from, end)),
        Case("aggregate-raw", f"  baseline: the {n:,}-device aggregate from raw rows",
             lambda c, i: with_device_names(c, c.execute(RAW_AGGREGATE_SQL, day).fetchall()),
             slow=True),
    ]


def with_device_names(conn, rows):
    """Raw aggregate rows (device ids) as history.aggregate() gives them (device names)."""
    names = history.device_names(conn, {r["min_device_id"] for r in rows} | {r["max_device_id"] for r in rows})
    return [{"minute": r["minute"], "mean": r["mean"], "min": r["min"], "max": r["max"], "n": r["n"],
             "min_device": names.get(r["min_device_id"]), "max_device": names.get(r["max_device_id"])}
            for r in rows]


@contextmanager
def not_rolled_up(conn, end, minutes):
    """Meanwhile, the last `minutes` minutes before `end` are left not rolled up, as they are
    while the ingest runs (refresh_rollups() never does the current minute)."""
    if not minutes:
        yield
        return
    conn.execute("INSERT INTO rollup_invalidations (minute) SELECT generate_series(%s - %s * "
                 "interval '1 minute', %s - interval '1 minute', interval '1 minute')",
                 (end, minutes, end))
    try:
        yield
    finally:
        conn.execute("DELETE FROM rollup_invalidations WHERE minute >= %s - %s * interval '1 minute'",
                     (end, minutes))


def same_rows(a, b, time_key):
    """True if two answers have the same minutes, counts, minima, maxima and devices, and
    means equal but for rounding (the rollups sum per minute first)."""
    if a is None or b is None or len(a) != len(b):
        return False
    for x, y in zip(a, b):
        for key in (time_key, "n", "min", "max", "min_device", "max_device"):
            if x.get(key) != y.get(key):
                return False
        if not math.isclose(x["mean"], y["mean"], rel_tol=1e-9, abs_tol=1e-9):
            return False
    return True


AGREEMENTS = (("chart", "chart-raw", "ts"), ("chart-live", "chart-raw", "ts"),
              ("aggregate", "aggregate-raw", "minute"),
              ("aggregate-live", "aggregate-raw", "minute"),
              ("aggregate-attributes", "aggregate-raw", "minute"))


def agreements(timings):
    """[(key, baseline key, same answer?)] for the pairs that were both measured."""
    return [(a, b, same_rows(timings[a].result, timings[b].result, t))
            for a, b, t in AGREEMENTS if a in timings and b in timings]


def shorten_arrays(plan_line):
    """A plan line with long literal arrays (1,000 ids) cut to their length."""
    return re.sub(r"'\{([^'{}]{80,})\}'",
                  lambda m: f"'{{…{m.group(1).count(',') + 1} values…}}'", plan_line)


def explain(conn, case):
    """EXPLAIN (ANALYZE, TIMING OFF, BUFFERS) of every statement the case runs, as text.
    Per-node timing is very costly on this VM: wall time is the client's measurement."""
    recorder = Recorder(conn)
    case.run(recorder, 0)
    plans = []
    for sql, params in recorder.statements:
        rows = conn.execute("EXPLAIN (ANALYZE, TIMING OFF, BUFFERS) " + sql, params).fetchall()
        plans.append("\n".join(shorten_arrays(next(iter(r.values())) if isinstance(r, dict) else r[0])
                               for r in rows))
    return plans
