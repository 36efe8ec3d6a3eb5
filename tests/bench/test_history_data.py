"""The history benchmark's data: its shape, and a small load checked against raw rows."""
from datetime import datetime, timedelta, timezone

import psycopg
from psycopg.rows import dict_row

from bench import history_data, history_queries
from octopus_portal import history


def test_100_million_rows_are_5000_attributes_every_30_24_s_over_exactly_7_days():
    layout = history_data.Layout()
    assert (layout.devices, layout.attributes, layout.readings) == (1000, 5000, 20_000)
    assert layout.period_ms == 30_240
    assert layout.data_span() == timedelta(days=7)
    assert layout.readings * layout.attributes == 100_000_000


def test_a_period_lists_every_attribute_once_in_time_order():
    layout = history_data.Layout(rows=5000 * 20, rooms=2, devices_per_room=3)
    series = layout.series()
    assert [s[0] for s in series] == list(range(len(series)))
    assert len({(s[1], s[2], s[3]) for s in series}) == layout.attributes == 30
    phases = [s[7] for s in series]
    assert phases == sorted(phases) and 0 <= phases[0] and phases[-1] < layout.period_ms
    # a device sends its five attributes at one instant
    by_device = {}
    for _, room, device, _, _, _, _, phase, _ in series:
        by_device.setdefault((room, device), set()).add(phase)
    assert all(len(p) == 1 for p in by_device.values())
    assert ("room02", "dev0006") in by_device


def test_the_export_range_holds_exactly_the_rows_asked_for():
    layout = history_data.Layout()
    end = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
    start, stop = layout.export_range(end, 1_000_000)
    slots = (stop - start) / timedelta(milliseconds=layout.period_ms)
    assert stop == end and slots == 2000   # 500 attributes of a room × 2,000 readings


def test_chunks_and_days_cover_their_ranges_without_gaps():
    assert history_data.chunks(1, 10, 4) == [(1, 4), (5, 8), (9, 10)]
    assert history_data.chunks(1, 0, 4) == []
    start = datetime(2026, 11, 15, 15, 26, tzinfo=timezone.utc)
    days = history_data.utc_days(start, start + timedelta(days=7))
    assert len(days) == 8 and days[0] == datetime(2026, 11, 15, tzinfo=timezone.utc)
    assert history_data.grid_end(datetime(2026, 11, 22, 15, 26, 59, 5, tzinfo=timezone.utc)) == \
        datetime(2026, 11, 22, 15, 26, tzinfo=timezone.utc)


def test_a_small_load_is_registered_rolled_up_and_answers_as_raw_rows_do(fresh_db):
    layout = history_data.Layout(rows=30 * 240, rooms=2, devices_per_room=3, span=timedelta(hours=2))
    now = datetime(2026, 11, 22, 0, 40, 30, tzinfo=timezone.utc)   # spans midnight
    with psycopg.connect(**fresh_db, autocommit=True) as conn:
        meta = history_data.load(conn, layout, now=now, log=lambda m: None)
        assert meta["complete"] and meta["rows"] == 7200
        assert meta["end"] == datetime(2026, 11, 22, 0, 40, tzinfo=timezone.utc)
        count, first, last = conn.execute("SELECT count(*), min(ts), max(ts) FROM measurements").fetchone()
        assert count == 7200 and first >= meta["start"] and last < meta["end"]
        # registered as the ingest does: units, last values = the newest reading
        stale = conn.execute("""
            SELECT count(*) FROM attributes a
              JOIN LATERAL (SELECT ts, num FROM measurements m WHERE m.attribute_id = a.id
                             ORDER BY ts DESC LIMIT 1) newest ON true
             WHERE a.unit IS NULL OR a.last_ts <> newest.ts OR a.last_num <> newest.num""").fetchone()[0]
        assert stale == 0
        # the rollups are refresh_rollups()'s and cover every minute
        differ = conn.execute("""
            SELECT count(*) FROM (SELECT attribute_id, minute_of(ts) AS minute, count(*) AS n,
                                         sum(num) AS sum, min(num) AS min, max(num) AS max
                                    FROM measurements GROUP BY 1, 2) raw
              FULL JOIN measurements_minute r USING (attribute_id, minute)
             WHERE r.n IS DISTINCT FROM raw.n OR r.min IS DISTINCT FROM raw.min
                OR r.max IS DISTINCT FROM raw.max OR abs(r.sum - raw.sum) > 1e-9""").fetchone()[0]
        assert differ == 0
        assert conn.execute("SELECT count(*) FROM rollup_invalidations").fetchone()[0] == 0
    with psycopg.connect(**fresh_db, autocommit=True, row_factory=dict_row) as conn:
        ids = [r["id"] for r in conn.execute(
            "SELECT a.id FROM attributes a JOIN devices d ON d.id = a.device_id"
            " WHERE a.name = 'temperatura' ORDER BY d.id")]
        start, end = meta["start"], meta["end"]
        rolled = history.aggregate(conn, history.Selection.devices_and_attribute("bench/#", "temperatura"),
                                   start, end)
        raw = history_queries.with_device_names(conn, conn.execute(
            history_queries.RAW_AGGREGATE_SQL, {"ids": ids, "start": start, "end": end}).fetchall())
        assert len(rolled) == 120 and history_queries.same_rows(rolled, raw, "minute")
        values = [r["num"] for r in conn.execute("SELECT num FROM measurements WHERE attribute_id = %s", [ids[0]])]
        assert all(10 < v < 35 and round(v, 2) == v for v in values)   # a plausible temperature
