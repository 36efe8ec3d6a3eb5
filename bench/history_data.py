"""The history benchmark's data: 1,000 devices × 5 attributes, one reading per attribute every
~30 s over 7 days (100 million rows), registered through ingest_batch() as the ingest does,
generated in SQL in time order into the partitioned `measurements` (primary key in place),
rolled up by refresh_rollups() itself, then VACUUM ANALYZE."""
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

SITE = "bench"
# name, unit, centre, spread between devices, wave amplitude, wave period (s), wave peak
# (s after midnight UTC), noise (peak to peak), decimals
KINDS = (
    ("temperatura", "°C", 21.5, 2.0, 2.5, 86_400, 15 * 3600, 0.4, 2),
    ("humedad", "%", 48.0, 6.0, 8.0, 86_400, 5 * 3600, 2.0, 1),
    ("co2", "ppm", 650.0, 80.0, 250.0, 86_400, 12 * 3600, 40.0, 0),
    ("presion", "hPa", 1013.0, 0.5, 4.0, 5 * 86_400, 0, 0.2, 1),
    ("voltaje", "V", 230.0, 1.5, 1.0, 86_400, 19 * 3600, 2.0, 1),
)
SPAN = timedelta(days=7)
CHUNK_ROWS = 2_000_000   # rows per INSERT … SELECT (one transaction, one progress line)


@dataclass(frozen=True)
class Layout:
    """Which devices and how often: `rows` readings spread evenly over SPAN."""
    rows: int = 100_000_000
    rooms: int = 10
    devices_per_room: int = 100
    span: timedelta = SPAN

    @property
    def devices(self):
        return self.rooms * self.devices_per_room

    @property
    def attributes(self):
        return self.devices * len(KINDS)

    @property
    def readings(self):
        """Readings per attribute."""
        return self.rows // self.attributes

    @property
    def period_ms(self):
        """Milliseconds between two readings of one attribute (30,240 for 100 million rows)."""
        return round(self.span.total_seconds() * 1000 / self.readings)

    def data_span(self):
        """From the first reading's slot to the end: `span`, but for rounding."""
        return timedelta(milliseconds=self.period_ms * self.readings)

    def rooms_and_devices(self):
        """[(room, device, device number)], device numbers 0…devices-1 in topic order."""
        return [(f"room{r + 1:02d}", f"dev{r * self.devices_per_room + d + 1:04d}",
                 r * self.devices_per_room + d)
                for r in range(self.rooms) for d in range(self.devices_per_room)]

    def series(self):
        """One row per attribute, in the order its readings come within a period (by the
        device's phase): (pos, room, device, attribute, unit, kind, device_no, phase_ms,
        offset). A device sends its five attributes at the same instant; devices are
        spread over the period. offset ∈ [-1, 1) tells devices apart."""
        rows = []
        for room, device, no in self.rooms_and_devices():
            phase = (no * 2_654_435_761) % self.period_ms   # Knuth's multiplicative hash
            offset = ((no * 7919) % 2000) / 1000 - 1
            for kind, spec in enumerate(KINDS):
                rows.append((phase, no, kind, room, device, spec[0], spec[1], offset))
        rows.sort()
        return [(pos, room, device, name, unit, kind, no, phase, offset)
                for pos, (phase, no, kind, room, device, name, unit, offset) in enumerate(rows)]

    def export_range(self, end, rows=1_000_000):
        """[start, end) holding `rows` readings of one room's attributes (end on the grid)."""
        per_room = self.devices_per_room * len(KINDS)
        return end - timedelta(milliseconds=self.period_ms * math.ceil(rows / per_room)), end


def grid_end(now):
    """The end of the data: a whole minute, on or before `now`."""
    return now.astimezone(timezone.utc).replace(second=0, microsecond=0)


SCHEMA = """
CREATE SCHEMA IF NOT EXISTS bench_history;
CREATE TABLE IF NOT EXISTS bench_history.series (
    pos integer PRIMARY KEY, room text NOT NULL, device text NOT NULL, attribute text NOT NULL,
    unit text NOT NULL, kind integer NOT NULL, device_no integer NOT NULL,
    phase_ms integer NOT NULL, "offset" double precision NOT NULL, attribute_id integer
);
CREATE TABLE IF NOT EXISTS bench_history.meta (
    rows bigint NOT NULL, devices integer NOT NULL, attributes integer NOT NULL,
    readings integer NOT NULL, period_ms integer NOT NULL,
    start_ts timestamptz NOT NULL, end_ts timestamptz NOT NULL,
    raw_done_k integer NOT NULL DEFAULT 0,          -- slots 0 … raw_done_k are stored
    last_slot boolean NOT NULL DEFAULT false,        -- the last slot is stored
    rolled_up_to timestamptz,                        -- the days before it are rolled up
    timings jsonb NOT NULL DEFAULT '{}', complete boolean NOT NULL DEFAULT false
);
"""


def value_sql(kind, t_epoch, offset):
    """SQL for one reading of the KINDS index `kind` at epoch seconds `t_epoch` (SQL
    expressions both): a wave, the device's offset and noise, rounded as a sensor reports."""
    cases = []
    for i, (_, _, centre, spread, amp, wave, peak, noise, decimals) in enumerate(KINDS):
        scale = 10 ** decimals
        cases.append(f"WHEN {i} THEN round(({centre} + {spread} * {offset} + {amp} * cos(2 * pi() * "
                     f"({t_epoch} - {peak}) / {wave}) + {noise} * (random() - 0.5)) * {scale}) / {scale}")
    return f"CASE {kind} {' '.join(cases)} END"


# Reading k of every attribute, k in [k_lo, k_hi], in time order (i = k × A + pos): one
# function scan, no join, no sort. Arrays indexed by pos (params: ids, kinds, phases,
# offsets, start epoch, period, A).
GENERATED = """
SELECT (%(ids)s::integer[])[p + 1] AS attribute_id,
       to_timestamp(%(start)s::float8 + (k * %(period)s::bigint + (%(phases)s::integer[])[p + 1]) / 1000.0) AS ts,
       {value} AS num
  FROM (SELECT i / %(a)s::bigint AS k, (i %% %(a)s::bigint)::integer AS p
          FROM generate_series(%(k_lo)s::bigint * %(a)s::bigint,
                               (%(k_hi)s::bigint + 1) * %(a)s::bigint - 1) AS i) AS g
"""


def generated_sql():
    value = value_sql("(%(kinds)s::integer[])[p + 1]",
                      "(%(start)s::float8 + (k * %(period)s::bigint + (%(phases)s::integer[])[p + 1]) / 1000.0)",
                      "(%(offsets)s::float8[])[p + 1]")
    return GENERATED.format(value=value)


# One slot's readings through the ingest's own function: devices, attributes (with units and
# last values), partitions and rollup invalidations exactly as a batch from MQTT makes them.
INGEST_SLOT = """
WITH r AS (
    SELECT s.pos, s.room, s.device, s.attribute, s.unit,
           to_timestamp(%(start)s::float8 + (%(k)s::bigint * %(period)s::bigint + s.phase_ms) / 1000.0)
               AS ts, s.kind,
           s."offset"
      FROM bench_history.series s
)
SELECT ingest_batch(
    array_agg(%(site)s::text ORDER BY pos), array_agg(room ORDER BY pos),
    array_agg(device ORDER BY pos), array_agg(attribute ORDER BY pos), array_agg(ts ORDER BY pos),
    array_agg(({value})::float8 ORDER BY pos), array_agg(NULL::text ORDER BY pos),
    array_agg(unit ORDER BY pos),
    '{{}}', '{{}}', '{{}}', '{{}}', '{{}}', '{{}}', '{{}}', '{{}}', '{{}}')
  FROM r
"""


def ingest_slot_sql():
    return INGEST_SLOT.format(value=value_sql("kind", "extract(epoch FROM ts)", '"offset"'))


def utc_days(start, end):
    """The UTC days (midnights) that [start, end) touches."""
    day = start.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    days = []
    while day < end:
        days.append(day)
        day += timedelta(days=1)
    return days


def chunks(k_lo, k_hi, per_chunk):
    """[k_lo, k_hi] cut into consecutive inclusive ranges of at most per_chunk slots."""
    out, k = [], k_lo
    while k <= k_hi:
        out.append((k, min(k + per_chunk - 1, k_hi)))
        k += per_chunk
    return out


META_COLUMNS = ("rows", "devices", "attributes", "readings", "period_ms", "start_ts", "end_ts",
                "raw_done_k", "last_slot", "rolled_up_to", "timings", "complete")


def read_meta(conn):
    """The benchmark data's description and how far its load went, or None."""
    if conn.execute("SELECT to_regclass('bench_history.meta')").fetchone()[0] is None:
        return None
    columns = ", ".join(META_COLUMNS)
    row = conn.execute(f"SELECT {columns} FROM bench_history.meta").fetchone()  # nosec B608  # constant names
    if row is None:
        return None
    meta = dict(zip(META_COLUMNS, row))
    meta["start"], meta["end"] = meta.pop("start_ts"), meta.pop("end_ts")
    return meta


def add_time(conn, key, seconds):
    conn.execute("UPDATE bench_history.meta SET timings = timings || jsonb_build_object(%s::text,"
                 " coalesce((timings->>%s)::float8, 0) + %s)", (key, key, seconds))


def register(conn, layout, end):
    """The bench tables, and slot 0 through ingest_batch() (devices, attributes, partitions),
    in one transaction."""
    start = end - layout.data_span()
    started = time.monotonic()
    with conn.transaction():
        conn.execute(SCHEMA)
        with conn.cursor() as cur, cur.copy(
                "COPY bench_history.series (pos, room, device, attribute, unit, kind, device_no,"
                " phase_ms, \"offset\") FROM STDIN") as copy:
            for row in layout.series():
                copy.write_row(row)
        conn.execute(ingest_slot_sql(), {"site": SITE, "start": start.timestamp(),
                                         "period": layout.period_ms, "k": 0})
        conn.execute("UPDATE bench_history.series s SET attribute_id = a.id FROM attributes a"
                     " JOIN devices d ON d.id = a.device_id"
                     " WHERE (d.site, d.room, d.name, a.name) = (%s, s.room, s.device, s.attribute)",
                     (SITE,))
        for day in utc_days(start, end):
            conn.execute("SELECT ensure_partition('measurements', 'day', %s)", (day,))
        conn.execute("INSERT INTO bench_history.meta (rows, devices, attributes, readings, period_ms,"
                     " start_ts, end_ts) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                     (layout.attributes * layout.readings, layout.devices, layout.attributes,
                      layout.readings, layout.period_ms, start, end))
        add_time(conn, "register_s", time.monotonic() - started)


def load_raw(conn, meta, log):
    """Slots raw_done_k+1 … readings-2 in bulk, a transaction per chunk (a load stopped
    half-way resumes at its next chunk), then the last slot through ingest_batch()."""
    a, readings = meta["attributes"], meta["readings"]
    series = conn.execute("SELECT attribute_id, kind, phase_ms, \"offset\" FROM bench_history.series"
                          " ORDER BY pos").fetchall()
    params = {"site": SITE, "start": meta["start"].timestamp(), "period": meta["period_ms"], "a": a,
              "ids": [r[0] for r in series], "kinds": [r[1] for r in series],
              "phases": [r[2] for r in series], "offsets": [r[3] for r in series]}
    insert = "INSERT INTO measurements (attribute_id, ts, num)" + generated_sql()
    started = time.monotonic()
    first = meta["raw_done_k"] + 1
    for k_lo, k_hi in chunks(first, readings - 2, max(CHUNK_ROWS // a, 1)):
        with conn.transaction():
            # never prepared: a generic plan would cast the 5,000-element arrays once per
            # row instead of once per statement (measured: 150,000 → 4,000 rows/s)
            conn.execute(insert, {**params, "k_lo": k_lo, "k_hi": k_hi}, prepare=False)
            conn.execute("UPDATE bench_history.meta SET raw_done_k = %s", (k_hi,))
        done = (k_hi + 1) * a
        rate = (k_hi - first + 1) * a / max(time.monotonic() - started, 1e-9)
        log(f"raw rows: {done:,} of {a * readings:,} ({rate:,.0f} rows/s)")
    if not meta["last_slot"]:
        with conn.transaction():
            conn.execute(ingest_slot_sql(), {**params, "k": readings - 1})
            conn.execute("UPDATE bench_history.meta SET last_slot = true")
    add_time(conn, "raw_s", time.monotonic() - started)


def roll_up(conn, meta, log):
    """Every minute of the data through refresh_rollups() itself, a day per call (each in one
    transaction with the note of its progress)."""
    start, end = meta["start"], meta["end"]
    started = time.monotonic()
    for day in utc_days(start, end):
        if meta["rolled_up_to"] is not None and day < meta["rolled_up_to"]:
            continue
        lo, hi = max(day, start), min(day + timedelta(days=1), end)
        with conn.transaction():
            conn.execute("INSERT INTO rollup_invalidations (minute) SELECT generate_series("
                         "minute_of(%s), %s - interval '1 minute', interval '1 minute')", (lo, hi))
            refreshed = conn.execute("SELECT refresh_rollups()").fetchone()[0]
            conn.execute("UPDATE bench_history.meta SET rolled_up_to = %s", (day + timedelta(days=1),))
        log(f"rollups: {refreshed:,} minutes of {day:%Y-%m-%d} by refresh_rollups() "
            f"({time.monotonic() - started:.0f} s so far)")
    add_time(conn, "rollups_s", time.monotonic() - started)


def load(conn, layout, now=None, log=print, superuser_conn=None):
    """Generate and roll up the data into a migrated database (an autocommit connection), or
    finish a load that stopped half-way; returns the meta."""
    meta = read_meta(conn)
    if meta is None:
        register(conn, layout, grid_end(now or datetime.now(timezone.utc)))
        meta = read_meta(conn)
    if superuser_conn is not None:   # fewer checkpoints (less WAL) while loading; undone below
        superuser_conn.execute("ALTER SYSTEM SET max_wal_size = '16GB'")
        superuser_conn.execute("ALTER SYSTEM SET checkpoint_timeout = '30min'")
        superuser_conn.execute("SELECT pg_reload_conf()")
    try:
        load_raw(conn, meta, log)
        roll_up(conn, meta, log)
    finally:
        if superuser_conn is not None:
            superuser_conn.execute("ALTER SYSTEM RESET max_wal_size")
            superuser_conn.execute("ALTER SYSTEM RESET checkpoint_timeout")
            superuser_conn.execute("SELECT pg_reload_conf()")
    started = time.monotonic()
    log("VACUUM ANALYZE (sets the visibility map, gathers statistics)")
    conn.execute("VACUUM ANALYZE")
    add_time(conn, "vacuum_s", time.monotonic() - started)
    conn.execute("UPDATE bench_history.meta SET complete = true")
    return read_meta(conn)
