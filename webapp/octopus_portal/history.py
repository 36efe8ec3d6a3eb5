"""Stored data over time: selections of attributes, chart series, per-minute aggregates, rows
for export. One place for these queries, used by the pages and by the REST API.

Rollups (postgres/migrations/004): a minute that still has a row in rollup_invalidations is
read from raw measurements, every other minute from the rollup tables, so an answer always
covers exactly the stored rows (doc/history.md).
"""
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

# Resolution picked for a chart when none is asked for: raw up to RAW_AUTO_MAX, per-minute
# up to MINUTE_AUTO_MAX (a 7-day chart is 10,080 points), per-hour beyond.
RAW_AUTO_MAX = timedelta(hours=2)
MINUTE_AUTO_MAX = timedelta(days=7, hours=1)
RESOLUTIONS = ("raw", "minute", "hour")
# Longest range a caller may ask raw rows for in one answer (a CSV export streams, so it
# may ask for more: EXPORT_RAW_MAX).
RAW_MAX = timedelta(days=2)
EXPORT_RAW_MAX = timedelta(days=366)
AGGREGATE_MAX = timedelta(days=31)
# Rollup rows one aggregate may read when no pre-aggregated group serves the selection (a
# device name across rooms, `+/room01/+`): each attribute's every minute, ~0.5 µs each here
# (doc/performance.md, History queries). 1,000 attributes over 7 days is ~5 s; over 31 days
# (45 million rows, ~23 s) a call would hold a database connection and a core for that long.
AGGREGATE_UNGROUPED_MAX_ROWS = 1_000 * 7 * 24 * 60


class SelectionError(ValueError):
    """A selection or range that cannot be answered; the message says what was wrong."""


def check_wildcards(levels, named):
    """SelectionError, starting with `named`, unless `levels` use MQTT's wildcards as MQTT
    does: `+` and `#` a whole level each, `#` only the last."""
    for i, level in enumerate(levels):
        if level == "#" and i != len(levels) - 1:
            raise SelectionError(f"{named}: # may only be the last level")
        if level not in ("+", "#") and ("+" in level or "#" in level):
            raise SelectionError(f"{named}: + and # stand for a whole level")


@dataclass(frozen=True)
class Selection:
    """Which attributes: levels of `site/room/device/attribute`, each a name, `+` or (last) `#`."""
    levels: tuple

    @classmethod
    def parse(cls, pattern):
        """A topic filter as MQTT writes it: `oficina/+/+/temperatura`, `oficina/#`."""
        if not isinstance(pattern, str) or not pattern:
            raise SelectionError("pattern is empty: use site/room/device/attribute, with + or #")
        levels = pattern.split("/")
        if "" in levels:
            raise SelectionError(f"pattern {pattern!r} has an empty level")
        check_wildcards(levels, f"pattern {pattern!r}")
        if levels[-1] != "#" and len(levels) != 4:
            raise SelectionError(f"pattern {pattern!r} has {len(levels)} levels: a measurement "
                                 "topic has 4 (site/room/device/attribute); end with # for fewer")
        if len(levels) > 4:
            raise SelectionError(f"pattern {pattern!r} has more than 4 levels")
        return cls(tuple(levels))

    @classmethod
    def of(cls, site=None, room=None, device=None, attribute=None):
        """The selection of named levels, the others any (`+`)."""
        return cls(tuple(v if v else "+" for v in (site, room, device, attribute)))

    @classmethod
    def devices_and_attribute(cls, devices, attribute):
        """Devices as a filter of up to 3 levels (`oficina/#`, `oficina/+/sensor1`) and one
        attribute name."""
        if not attribute or any(c in attribute for c in "/+#"):
            raise SelectionError("attribute must be one attribute name, e.g. temperatura")
        levels = devices.split("/") if devices else ["#"]
        if levels[-1] == "#":
            levels = levels[:-1]
        if len(levels) > 3:
            raise SelectionError(f"devices {devices!r}: at most site/room/device, with + or #")
        # what is left must read as the start of a measurement topic filter
        cls.parse("/".join(levels + ["#"]))
        return cls(tuple(levels) + ("+",) * (3 - len(levels)) + (attribute,))

    def full(self):
        """The four levels, a trailing # spelled out as +."""
        if self.levels[-1] != "#":
            return self.levels
        return self.levels[:-1] + ("+",) * (5 - len(self.levels))

    def where(self, columns=("d.site", "d.room", "d.name", "a.name")):
        """SQL conditions on the four levels' `columns` (by default d: devices and a:
        attributes), and their parameters."""
        conditions, params = [], []
        for column, level in zip(columns, self.full()):
            if level != "+":
                conditions.append(f"{column} = %s")
                params.append(level)
        return " AND ".join(conditions) or "true", params

    def group(self):
        """(site, room, attribute) of group_minute when the selection is one attribute name
        over a whole room, a whole site or everything; None otherwise."""
        site, room, device, attribute = self.full()
        if device != "+" or attribute == "+" or (site == "+" and room != "+"):
            return None
        return ("" if site == "+" else site, "" if room == "+" else room, attribute)


ATTRIBUTES_SQL = """
SELECT a.id, d.id AS device_id, d.site, d.room, d.name AS device, a.name AS attribute, a.unit
  FROM attributes a JOIN devices d ON d.id = a.device_id
 WHERE {where}
 ORDER BY d.site, d.room, d.name, a.name
"""


def attributes(conn, selection):
    """The attributes a selection matches, in topic order."""
    where, params = selection.where()
    return conn.execute(ATTRIBUTES_SQL.format(where=where), params).fetchall()


def check_range(start, end, longest=None):
    """Raise SelectionError unless start < end (aware datetimes) and, if given, the range is
    at most `longest`."""
    for name, value in (("from", start), ("to", end)):
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise SelectionError(f"'{name}' must be a time with a zone, e.g. 2026-11-22T12:00:00Z")
    if start >= end:
        raise SelectionError(f"the range is empty or inverted: 'from' {start.isoformat()} "
                             f"is not before 'to' {end.isoformat()}")
    if longest is not None and end - start > longest:
        raise SelectionError(f"the range is {end - start}, longer than the {longest} allowed here")


def pick_resolution(start, end, asked=None):
    """'raw', 'minute' or 'hour': what was asked for, or what suits the range."""
    if asked:
        if asked not in RESOLUTIONS:
            raise SelectionError(f"resolution {asked!r}: use one of {', '.join(RESOLUTIONS)}")
        if asked == "raw" and end - start > RAW_MAX:
            raise SelectionError(f"raw readings are served for at most {RAW_MAX} at a time; "
                                 "ask for resolution minute or hour, or export CSV")
        return asked
    span = end - start
    return "raw" if span <= RAW_AUTO_MAX else "minute" if span <= MINUTE_AUTO_MAX else "hour"


def minute_floor(ts):
    return ts.astimezone(timezone.utc).replace(second=0, microsecond=0)


def minute_ceil(ts):
    floor = minute_floor(ts)
    return floor if floor == ts else floor + timedelta(minutes=1)


# Per attribute and minute over [start, end) (whole minutes; parameters ids, start, end):
# rollups where they are current, raw rows for the minutes that still have an invalidation.
PENDING = """
pending AS (
    SELECT DISTINCT minute FROM rollup_invalidations
     WHERE minute >= %(start)s AND minute < %(end)s
)"""
ROLLED_UP = """
    SELECT attribute_id, minute, n, sum, min, max
      FROM measurements_minute
     WHERE attribute_id = ANY (%(ids)s) AND minute >= %(start)s AND minute < %(end)s
       AND minute NOT IN (SELECT minute FROM pending)"""
NOT_YET_ROLLED_UP = """
    SELECT m.attribute_id, p.minute, count(*) AS n, sum(m.num) AS sum, min(m.num) AS min,
           max(m.num) AS max
      FROM pending p
      JOIN measurements m ON m.ts >= p.minute AND m.ts < p.minute + interval '1 minute'
     WHERE m.attribute_id = ANY (%(ids)s) AND m.num IS NOT NULL
     GROUP BY m.attribute_id, p.minute"""
PER_ATTRIBUTE_MINUTES = (PENDING + ", per_attribute AS (" + ROLLED_UP + "\n    UNION ALL"
                         + NOT_YET_ROLLED_UP + "\n)")

SERIES_SQL = {
    "raw": """
SELECT ts, num AS value, txt FROM measurements
 WHERE attribute_id = %(id)s AND ts >= %(start)s AND ts < %(end)s
 ORDER BY ts""",
    "minute": "WITH" + PER_ATTRIBUTE_MINUTES + """
SELECT minute AS ts, sum / n AS mean, min, max, n FROM per_attribute ORDER BY minute""",
    "hour": "WITH" + PER_ATTRIBUTE_MINUTES + """
SELECT date_bin('1 hour', minute, timestamptz '2000-01-01 00:00:00+00') AS ts,
       sum(sum) / sum(n) AS mean, min(min) AS min, max(max) AS max, sum(n)::bigint AS n
  FROM per_attribute GROUP BY 1 ORDER BY 1""",
}


def series(conn, attribute_id, start, end, resolution):
    """One attribute's points: raw readings ({ts, value, txt}) or per-minute / per-hour
    buckets ({ts, mean, min, max, n}) of its numeric readings."""
    if resolution != "raw":
        start, end = minute_floor(start), minute_ceil(end)
    params = {"id": attribute_id, "ids": [attribute_id], "start": start, "end": end}
    return conn.execute(SERIES_SQL[resolution], params).fetchall()


# The device with the max (min) is the highest id among equals, as in group_minute.
def aggregate_of(per_attribute):
    """SQL: per-minute aggregate over the per-attribute minutes of `per_attribute` (a CTE)."""
    return f"""
SELECT r.minute, sum(r.sum) / sum(r.n) AS mean, min(r.min) AS min, max(r.max) AS max,
       sum(r.n)::bigint AS n,
       -(min(ARRAY[r.min, -a.device_id::float8]))[2]::integer AS min_device_id,
       (max(ARRAY[r.max, a.device_id::float8]))[2]::integer AS max_device_id
  FROM {per_attribute} r JOIN attributes a ON a.id = r.attribute_id
 GROUP BY r.minute"""


AGGREGATE_FROM_ATTRIBUTES_SQL = "WITH" + PER_ATTRIBUTE_MINUTES + aggregate_of("per_attribute")

# A whole room, site or everything: group_minute for the minutes rolled up, raw rows (of
# the group's attributes, `ids`) for the others.
AGGREGATE_FROM_GROUP_SQL = "WITH" + PENDING + ", not_rolled_up AS (" + NOT_YET_ROLLED_UP + """
)
SELECT minute, sum / n AS mean, min, max, n::bigint AS n, min_device_id, max_device_id
  FROM group_minute
 WHERE site = %(site)s AND room = %(room)s AND attribute = %(attribute)s
   AND minute >= %(start)s AND minute < %(end)s
   AND minute NOT IN (SELECT minute FROM pending)
UNION ALL""" + aggregate_of("not_rolled_up")


def aggregate(conn, selection, start, end):
    """Per-minute mean, min, max, count and the devices that had the min and the max, over
    the numeric readings of every attribute the selection matches, in [start, end) rounded
    out to whole minutes. Rows: {minute, mean, min, max, n, min_device, max_device}, where a
    device is its `site/room/name`."""
    start, end = minute_floor(start), minute_ceil(end)
    check_range(start, end, AGGREGATE_MAX)
    group = selection.group()
    ids = [row["id"] for row in attributes(conn, selection)]
    if group is None:
        check_ungrouped_size(len(ids), start, end)
    params = {"ids": ids, "start": start, "end": end}
    sql = AGGREGATE_FROM_ATTRIBUTES_SQL
    if group is not None:
        params.update(site=group[0], room=group[1], attribute=group[2])
        sql = AGGREGATE_FROM_GROUP_SQL
    rows = conn.execute(f"SELECT * FROM ({sql}) AS minutes ORDER BY minute",  # nosec B608  # sql: a constant
                        params).fetchall()
    names = device_names(conn, {r["min_device_id"] for r in rows} | {r["max_device_id"] for r in rows})
    return [{"minute": r["minute"], "mean": r["mean"], "min": r["min"], "max": r["max"],
             "n": r["n"], "min_device": names.get(r["min_device_id"]),
             "max_device": names.get(r["max_device_id"])} for r in rows]


def check_ungrouped_size(attribute_count, start, end):
    """Raise SelectionError if an aggregate without a group would read more rollup rows
    than AGGREGATE_UNGROUPED_MAX_ROWS, saying how far the range may go."""
    minutes = int((end - start).total_seconds() // 60)
    if attribute_count * minutes <= AGGREGATE_UNGROUPED_MAX_ROWS:
        return
    longest = timedelta(minutes=AGGREGATE_UNGROUPED_MAX_ROWS // attribute_count)
    raise SelectionError(
        f"{attribute_count:,} attributes over {end - start} is too much to aggregate one by "
        f"one ({attribute_count * minutes:,} per-minute rows; at most "
        f"{AGGREGATE_UNGROUPED_MAX_ROWS:,}): ask for at most {longest} at a time, or for a "
        "whole site, a whole room or every device, which are aggregated ahead")


def device_names(conn, ids):
    """{device id: 'site/room/name'}."""
    if not ids:
        return {}
    rows = conn.execute("SELECT id, site || '/' || room || '/' || name AS name FROM devices "
                        "WHERE id = ANY (%s)", [sorted(ids)]).fetchall()
    return {r["id"]: r["name"] for r in rows}


EXPORT_RAW_SQL = """
SELECT m.ts, d.site, d.room, d.name AS device, a.name AS attribute, m.num, m.txt, a.unit
  FROM measurements m JOIN attributes a ON a.id = m.attribute_id JOIN devices d ON d.id = a.device_id
 WHERE m.attribute_id = ANY (%(ids)s) AND m.ts >= %(start)s AND m.ts < %(end)s
 ORDER BY m.ts, d.site, d.room, d.name, a.name"""


def export_raw(conn, selection, start, end, batch=5000):
    """Every stored reading of the selection in [start, end), oldest first, as a generator
    that holds at most `batch` rows (a server-side cursor, inside a transaction).

    One query per UTC day (a partition of `measurements`), in order: the file is in time
    order all the same, but PostgreSQL sorts a day at a time, so the first row leaves after
    one day's sort rather than the whole range's (a month of 1,000 devices is ~86 million
    rows: minutes and gigabytes of temporary files before the first byte). The days are read
    in one REPEATABLE READ transaction: one snapshot, as one query had."""
    check_range(start, end, EXPORT_RAW_MAX)
    ids = [row["id"] for row in attributes(conn, selection)]
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        for day_start, day_end in utc_days(start, end):
            with conn.cursor(name="octopus_export") as cur:
                cur.itersize = batch
                cur.execute(EXPORT_RAW_SQL, {"ids": ids, "start": day_start, "end": day_end})
                yield from cur


def utc_days(start, end):
    """[start, end) cut at every UTC midnight: (from, to) pairs, in order."""
    while start < end:
        midnight = start.astimezone(timezone.utc).replace(hour=0, minute=0, second=0,
                                                          microsecond=0) + timedelta(days=1)
        yield start, min(midnight, end)
        start = min(midnight, end)
