"""What Grafana does to a PostgreSQL query before PostgreSQL sees it, so that the tests can run
the provisioned dashboards' queries as Grafana would send them.

Three steps, in Grafana's order (Grafana 12/13, pkg/tsdb/grafana-postgresql-datasource and
the PostgreSQL data source's frontend):

1. Dashboard variables (the browser, `interpolateVariable` of the SQL data sources): `$name`
   and `${name}` become the chosen value. A multi-value or "All" variable gives each value
   quoted as an SQL literal, joined by commas (`'a','b'`), for `IN ($name)` or
   `ARRAY[$name]`; a single-value variable gives the bare value, quotes doubled (written
   `'$name'` in the query, or bare for a number).
2. Global substitutions (sqleng `Interpolate`): `$__interval_ms` (milliseconds), then
   `$__interval` (`gtime.FormatInterval`: `1m`, `30m`, `1h`, ...), `$__unixEpochFrom()`,
   `$__unixEpochTo()`.
3. Macros `$__name(args)` (postgres `macros.go`, regex `\\$(\\w+)\\(([^)]*)\\)`):
   `$__time(c)` → `c AS "time"`; `$__timeEpoch(c)` → `extract(epoch from c) as "time"`;
   `$__timeFilter(c)` → `c BETWEEN '<from>' AND '<to>'` (RFC 3339, UTC, nanoseconds
   trimmed); `$__timeFrom()` / `$__timeTo()` → `'<from>'` / `'<to>'`;
   `$__timeGroup(c, 5m[, fill])` → `floor(extract(epoch from c)/300)*300` (epoch seconds,
   which Grafana reads as time; with TimescaleDB off); `$__timeGroupAlias(...)` → the same
   `AS "time"`; `$__unixEpochFilter(c)` → `c >= <from s> AND c <= <to s>`;
   `$__unixEpochGroup(c, 5m)` → `floor((c)/300)*300`. Any other macro is an error, as in
   Grafana ("unknown macro").

`$__interval` itself is what Grafana computes for a panel: the range divided by the panel's
maximum number of points (about its width in pixels), rounded to a "nice" interval
(`rangeutil.roundInterval`), and never below the panel's minimum interval (`interval` in
the panel JSON, else the data source's `timeInterval`).

Anything still looking like `$name` after the three steps is an unknown variable: an error
here, a broken panel in Grafana.
"""
import re
from datetime import timedelta, timezone

VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^)]*)\)")
LEFT_OVER = re.compile(r"\$\{?\w")
INTERVAL = re.compile(r"^(\d+)(ms|s|m|h|d|w|M|y)$")
UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
           "w": 7 * 86_400_000, "M": 30 * 86_400_000, "y": 365 * 86_400_000}
# rangeutil.roundInterval: (below this many ms, use this interval in ms)
ROUNDING = ((15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000),
            (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000),
            (45000, 30000), (90000, 60000), (210000, 120000), (450000, 300000),
            (750000, 600000), (1050000, 900000), (1500000, 1200000), (2700000, 1800000),
            (5400000, 3600000), (9000000, 7200000), (16200000, 10800000),
            (32400000, 21600000), (86400000, 43200000), (604800000, 86400000),
            (1814400000, 604800000), (3628800000, 2592000000))


class GrafanaSQLError(ValueError):
    """A query Grafana would refuse (unknown macro or variable, bad interval)."""


def parse_interval(text):
    """Milliseconds of an interval as Grafana writes them (`1m`, `30s`, `'5m'`)."""
    match = INTERVAL.match(text.strip().strip("'"))
    if not match:
        raise GrafanaSQLError(f"error parsing interval {text}")
    return int(match[1]) * UNIT_MS[match[2]]


def format_interval(ms):
    """gtime.FormatInterval: the largest whole unit, truncated (90 s is `1m`)."""
    for unit in ("y", "d", "h", "m", "s", "ms"):
        if ms >= UNIT_MS[unit]:
            return f"{ms // UNIT_MS[unit]}{unit}"
    return "1ms"


def panel_interval_ms(start, end, min_interval=None, max_data_points=1000):
    """$__interval of a panel over [start, end], in milliseconds."""
    span = (end - start) / timedelta(milliseconds=1)
    ms = next((nice for below, nice in ROUNDING if span / max_data_points < below), 31536000000)
    return max(ms, parse_interval(min_interval)) if min_interval else ms


def rfc3339(moment):
    """Go's time.RFC3339Nano of a UTC time: `2026-11-22T20:00:00Z`, `...:00.5Z`."""
    moment = moment.astimezone(timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += ("." + f"{moment.microsecond:06d}").rstrip("0")
    return text + "Z"


def quote_literal(value):
    return "'" + str(value).replace("'", "''") + "'"


def interpolate_variables(sql, variables):
    """Step 1. `variables`: {name: (value or list of values, multi_or_all)}."""
    def replace(match):
        name = match[1] or match[2]
        if name not in variables:
            return match[0]  # a built-in ($__interval) or unknown: left for later steps
        value, multi = variables[name]
        if isinstance(value, (list, tuple)):
            return ",".join(quote_literal(v) for v in value)
        if isinstance(value, (int, float)):
            return str(value)
        return quote_literal(value) if multi else str(value).replace("'", "''")
    return VARIABLE.sub(replace, sql)


def _macro(name, args, start, end):
    epoch_from, epoch_to = int(start.timestamp()), int(end.timestamp())
    if name in ("__time", "__timeEpoch", "__timeFilter", "__unixEpochFilter") and not args[0]:
        raise GrafanaSQLError(f"missing time column argument for macro {name}")
    if name == "__time":
        return f'{args[0]} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {args[0]}) as "time"'
    if name == "__timeFilter":
        return f"{args[0]} BETWEEN '{rfc3339(start)}' AND '{rfc3339(end)}'"
    if name == "__timeFrom":
        return f"'{rfc3339(start)}'"
    if name == "__timeTo":
        return f"'{rfc3339(end)}'"
    if name in ("__timeGroup", "__timeGroupAlias", "__unixEpochGroup", "__unixEpochGroupAlias"):
        if len(args) < 2:
            raise GrafanaSQLError(f"macro {name} needs time column and interval")
        seconds = parse_interval(args[1]) / 1000
        seconds = int(seconds) if seconds == int(seconds) else seconds  # Go's %v of a float
        if name.startswith("__timeGroup"):
            group = f"floor(extract(epoch from {args[0]})/{seconds})*{seconds}"
        else:
            group = f"floor(({args[0]})/{seconds})*{seconds}"
        return group + (' AS "time"' if name.endswith("Alias") else "")
    if name == "__unixEpochFilter":
        return f"{args[0]} >= {epoch_from} AND {args[0]} <= {epoch_to}"
    raise GrafanaSQLError(f'unknown macro "{name}"')


def expand(sql, start, end, interval_ms, variables=None):
    """The SQL Grafana sends to PostgreSQL for a panel over [start, end] (aware datetimes)."""
    sql = interpolate_variables(sql, variables or {})
    sql = sql.replace("$__interval_ms", str(interval_ms))
    sql = sql.replace("$__interval", format_interval(interval_ms))
    sql = sql.replace("$__unixEpochFrom()", str(int(start.timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(end.timestamp())))

    def replace(match):
        name, args = match[1], [a.strip() for a in match[2].split(",")]
        # Grafana < 5.3 compatibility, kept by Grafana: `$__timeGroup(...)` directly followed
        # by a comma gets the alias
        if name == "__timeGroup" and sql[match.end():match.end() + 1] == ",":
            name = "__timeGroupAlias"
        return _macro(name, args, start, end)
    sql = MACRO.sub(replace, sql)
    left = LEFT_OVER.search(sql)
    if left:
        raise GrafanaSQLError(f"unknown variable at {sql[left.start():left.start() + 30]!r}")
    return sql
