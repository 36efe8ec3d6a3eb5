"""Aggregates and chart series (webapp/octopus_portal/history.py) against values computed here,
independently, from the raw rows: minute and day boundaries, late readings into minutes
already rolled up, and the current minute not rolled up yet (issue 4, acceptance 1)."""
import random
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg.rows import dict_row

from octopus_portal import history
from octopus_portal.history import Selection

DEVICES = [("planta", "sala1", "d1"), ("planta", "sala1", "d2"), ("planta", "sala2", "d3"),
           ("planta", "sala2", "d4"), ("oficina", "sala1", "d1"), ("oficina", "norte", "d9")]


@pytest.fixture
def conn(fresh_db):
    with psycopg.connect(**fresh_db, autocommit=True, row_factory=dict_row) as c:
        yield c


def store(conn, readings):
    """Store (device, attribute, ts, value) readings through ingest_batch, as the ingest does."""
    rows = list(zip(*[(s, r, d, a, ts, v if isinstance(v, float) else None,
                       v if isinstance(v, str) else None, None)
                      for (s, r, d), a, ts, v in readings]))
    conn.execute("SELECT ingest_batch(%s::text[], %s::text[], %s::text[], %s::text[], "
                 "%s::timestamptz[], %s::float8[], %s::text[], %s::text[], '{}', '{}', '{}', "
                 "'{}', '{}', '{}', '{}', '{}', '{}')", [list(c) for c in rows])


def maintain(conn):
    return conn.execute("SELECT run_maintenance(0, 0) AS r").fetchone()["r"]


def random_readings(rng, start, minutes, per_minute):
    """Readings of every device, `per_minute` a minute on average, at random microseconds."""
    out = []
    for device in DEVICES:
        for attribute in ("temperatura", "humedad"):
            for _ in range(minutes * per_minute):
                ts = start + timedelta(microseconds=rng.randrange(minutes * 60_000_000))
                out.append((device, attribute, ts, round(rng.uniform(-20, 60), 3)))
    # state strings are stored but are not numbers: no aggregate may count them
    out.append((DEVICES[0], "temperatura", start + timedelta(seconds=5), "sensor_fault"))
    return out


def raw_rows(conn):
    return conn.execute("""
        SELECT d.id AS device_id, d.site, d.room, d.name AS device, a.name AS attribute,
               m.ts, m.num
          FROM measurements m JOIN attributes a ON a.id = m.attribute_id
          JOIN devices d ON d.id = a.device_id""").fetchall()


def matches(selection, row):
    levels = selection.full()
    values = (row["site"], row["room"], row["device"], row["attribute"])
    return all(level == "+" or level == value for level, value in zip(levels, values))


def expected_aggregate(rows, selection, start, end):
    """Per minute over numeric rows: mean, min, max, count, and the device (highest id
    among equals, as the database breaks ties) that had the min and the max."""
    minutes = defaultdict(list)
    for r in rows:
        if r["num"] is not None and start <= r["ts"] < end and matches(selection, r):
            minutes[r["ts"].replace(second=0, microsecond=0)].append(r)
    out = []
    for minute in sorted(minutes):
        group = minutes[minute]
        lo = max(group, key=lambda r: (-r["num"], r["device_id"]))
        hi = max(group, key=lambda r: (r["num"], r["device_id"]))
        out.append({"minute": minute, "n": len(group),
                    "mean": pytest.approx(sum(r["num"] for r in group) / len(group)),
                    "min": lo["num"], "max": hi["num"],
                    "min_device": f"{lo['site']}/{lo['room']}/{lo['device']}",
                    "max_device": f"{hi['site']}/{hi['room']}/{hi['device']}"})
    return out


def expected_series(rows, attribute_id_rows, start, end, bucket):
    buckets = defaultdict(list)
    for r in rows:
        if (r["num"] is not None and start <= r["ts"] < end
                and (r["site"], r["room"], r["device"], r["attribute"]) == attribute_id_rows):
            buckets[bucket(r["ts"])].append(r["num"])
    return [{"ts": b, "n": len(v), "mean": pytest.approx(sum(v) / len(v)),
             "min": min(v), "max": max(v)} for b, v in sorted(buckets.items())]


SELECTIONS = [
    Selection.devices_and_attribute("planta/#", "temperatura"),        # a site: group_minute
    Selection.devices_and_attribute("planta/sala1", "temperatura"),    # a room: group_minute
    Selection.devices_and_attribute("#", "humedad"),                   # everything: group_minute
    Selection.devices_and_attribute("+/sala1/+", "temperatura"),       # a pattern: per attribute
    Selection.devices_and_attribute("+/+/d1", "humedad"),              # a pattern: per attribute
]


def test_aggregates_equal_what_the_raw_rows_say(conn):
    rng = random.Random(4)
    # across midnight two days ago: minute and day boundaries, two day partitions
    midnight = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) \
        - timedelta(days=1)
    store(conn, random_readings(rng, midnight - timedelta(minutes=3), 6, 4))
    assert maintain(conn)["refreshed_minutes"] == 6

    # late readings into minutes already rolled up, and readings of the current minute
    # (not rolled up until it is over): both must be in the answers
    late = [(DEVICES[1], "temperatura", midnight - timedelta(seconds=61), 99.5),
            (DEVICES[5], "humedad", midnight + timedelta(seconds=1), -40.25)]
    now = datetime.now(timezone.utc)
    current = [(d, "temperatura", now - timedelta(microseconds=rng.randrange(1000)), 12.0 + i)
               for i, d in enumerate(DEVICES)]
    store(conn, late + current)
    pending = conn.execute("SELECT count(DISTINCT minute) AS n FROM rollup_invalidations").fetchone()
    assert pending["n"] >= 3, "the late minutes and the current one wait for the next run"

    start, end = midnight - timedelta(hours=1), now + timedelta(minutes=1)
    rows = raw_rows(conn)
    for selection in SELECTIONS:
        expected = expected_aggregate(rows, selection, start, end)
        assert len(expected) >= 6
        assert history.aggregate(conn, selection, start, end) == expected, selection

    # and after the next run, every finished minute from the rollups alone
    maintain(conn)
    for selection in SELECTIONS:
        assert history.aggregate(conn, selection, start, end) == \
            expected_aggregate(rows, selection, start, end), selection


def test_series_per_minute_and_per_hour_equal_the_raw_rows(conn):
    rng = random.Random(7)
    midnight = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    store(conn, random_readings(rng, midnight - timedelta(minutes=50), 120, 2))
    maintain(conn)
    store(conn, [(DEVICES[2], "temperatura", midnight - timedelta(minutes=49, seconds=30), 77.0)])

    attribute = conn.execute(
        "SELECT a.id FROM attributes a JOIN devices d ON d.id = a.device_id "
        "WHERE (d.site, d.room, d.name, a.name) = ('planta', 'sala2', 'd3', 'temperatura')"
    ).fetchone()["id"]
    start, end = midnight - timedelta(hours=2), midnight + timedelta(hours=2)
    rows = raw_rows(conn)
    key = ("planta", "sala2", "d3", "temperatura")
    minute = history.series(conn, attribute, start, end, "minute")
    assert minute == expected_series(rows, key, start, end,
                                     lambda ts: ts.replace(second=0, microsecond=0))
    hour = history.series(conn, attribute, start, end, "hour")
    assert hour == expected_series(rows, key, start, end,
                                   lambda ts: ts.replace(minute=0, second=0, microsecond=0))
    assert len(hour) == 3, "the readings span three hours"
    raw = history.series(conn, attribute, midnight - timedelta(minutes=50), midnight, "raw")
    assert [r["ts"] for r in raw] == sorted(
        r["ts"] for r in rows if r["site"] == "planta" and r["device"] == "d3"
        and r["attribute"] == "temperatura" and r["ts"] < midnight)


@pytest.mark.parametrize("pattern, message", [
    ("", "empty"), ("a//b/c", "empty level"), ("a/#/b/c", "last level"),
    ("a/b", "4"), ("a/b/c/d/e", "levels"), ("a+/b/c/d", "whole level"),
])
def test_bad_patterns_are_explained(pattern, message):
    with pytest.raises(history.SelectionError, match=message):
        Selection.parse(pattern)


def test_bad_ranges_are_explained():
    t = datetime(2026, 11, 22, tzinfo=timezone.utc)
    with pytest.raises(history.SelectionError, match="inverted"):
        history.check_range(t, t - timedelta(hours=1))
    with pytest.raises(history.SelectionError, match="zone"):
        history.check_range(t.replace(tzinfo=None), t)
    with pytest.raises(history.SelectionError, match="raw readings"):
        history.pick_resolution(t - timedelta(days=30), t, "raw")
    assert history.pick_resolution(t - timedelta(hours=1), t) == "raw"
    assert history.pick_resolution(t - timedelta(days=7), t) == "minute"
    assert history.pick_resolution(t - timedelta(days=30), t) == "hour"


def test_a_raw_export_over_days_is_in_time_order_and_one_snapshot(conn, fresh_db):
    """Read a day at a time (history.export_raw), the file is still every reading of the
    range in time order; and a reading stored while the file is being written, into a day
    not read yet, is not in it, as it would not be in the answer of one query."""
    start = datetime(2026, 11, 20, 22, 0, tzinfo=timezone.utc)
    rng = random.Random(7)
    readings = [(device, "temperatura", start + timedelta(seconds=rng.randrange(3 * 86400)),
                 float(i)) for i, device in enumerate(DEVICES * 40)]
    store(conn, readings)
    end = start + timedelta(days=3)
    rows = history.export_raw(conn, Selection.parse("#"), start + timedelta(hours=1), end)
    first = next(rows)
    with psycopg.connect(**fresh_db, autocommit=True) as other:  # stored meanwhile
        store(other, [(DEVICES[0], "temperatura", end - timedelta(minutes=1), -1.0)])
    exported = [first, *rows]
    expected = sorted((ts, (s, r, d), v) for (s, r, d), _, ts, v in readings
                      if ts >= start + timedelta(hours=1))
    assert [(r["ts"], (r["site"], r["room"], r["device"]), r["num"]) for r in exported] == \
        expected, "every reading, oldest first, across 4 UTC days, and not the late one"
    assert len({r["ts"].date() for r in exported}) == 4
    assert list(history.utc_days(start, start + timedelta(hours=3))) == [
        (start, start + timedelta(hours=2)),
        (start + timedelta(hours=2), start + timedelta(hours=3))]
