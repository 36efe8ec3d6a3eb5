"""The history benchmark's measuring helpers and report (no database)."""
from datetime import datetime, timedelta, timezone

from bench import history_queries as hq
from bench import history_report
from octopus_portal import history

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def test_percentiles_are_nearest_rank():
    runs = list(range(1, 21))   # 20 calls: p95 is the 19th fastest
    assert hq.percentile(runs, 95) == 19 and hq.percentile(runs, 50) == 10
    assert hq.percentile([7.0], 95) == 7.0 and hq.percentile([3, 1, 2], 100) == 3


def test_a_timing_is_judged_on_its_p95():
    case = hq.Case("chart", "chart", None, target_ms=100)
    assert hq.Timing(case, runs_ms=[10] * 19 + [500]).verdict == "met"
    assert hq.Timing(case, runs_ms=[10] * 18 + [101, 500]).verdict == "NOT met"
    assert hq.Timing(hq.Case("raw", "raw", None), runs_ms=[900]).verdict == ""


def test_the_forced_path_has_no_group_and_the_room_pattern_has_none_either():
    every = history.Selection.devices_and_attribute(hq.ALL_DEVICES, hq.ATTRIBUTE)
    assert every.group() == ("bench", "", "temperatura")
    assert hq.WithoutGroup(every.levels).group() is None
    assert hq.WithoutGroup(every.levels).where() == every.where()
    assert history.Selection.devices_and_attribute(hq.ONE_ROOM_ANY_SITE, hq.ATTRIBUTE).group() is None


def row(minute, n=2, mean=1.0, lo=0.5, hi=1.5, lo_dev="bench/room01/dev0001", hi_dev="bench/room01/dev0002"):
    return {"minute": T0 + timedelta(minutes=minute), "mean": mean, "min": lo, "max": hi, "n": n,
            "min_device": lo_dev, "max_device": hi_dev}


def test_answers_agree_up_to_the_rounding_of_the_mean_only():
    a = [row(0), row(1)]
    assert hq.same_rows(a, [row(0), row(1, mean=1.0 + 1e-13)], "minute")
    assert not hq.same_rows(a, [row(0), row(1, mean=1.001)], "minute")
    assert not hq.same_rows(a, [row(0), row(1, n=3)], "minute")
    assert not hq.same_rows(a, [row(0), row(1, hi_dev="bench/room01/dev0003")], "minute")
    assert not hq.same_rows(a, [row(0)], "minute") and not hq.same_rows(a, None, "minute")


def test_every_statement_a_call_makes_is_recorded():
    class Conn:
        def execute(self, sql, params=None):
            return (sql, params)
        closed = False
    rec = hq.Recorder(Conn())
    rec.execute("SELECT 1")
    rec.execute("SELECT %s", [2])
    assert rec.statements == [("SELECT 1", None), ("SELECT %s", [2])] and rec.closed is False


def test_long_literal_arrays_are_cut_in_printed_plans():
    ids = ",".join(str(i) for i in range(1000))
    line = f"Index Cond: ((attribute_id = ANY ('{{{ids}}}'::integer[])) AND (x = ANY ('{{1,2}}'::integer[])))"
    assert hq.shorten_arrays(line) == ("Index Cond: ((attribute_id = ANY ('{…1000 values…}'::integer[]))"
                                       " AND (x = ANY ('{1,2}'::integer[])))")


def test_the_cases_cover_both_targets_and_their_baselines():
    cases = {c.key: c for c in hq.cases(T0, list(range(1, 1001)))}
    assert cases["chart"].target_ms == 100 and cases["aggregate"].target_ms == 200
    assert {"chart-raw", "aggregate-raw", "aggregate-attributes", "chart-live"} <= set(cases)
    assert cases["chart-live"].pending == hq.LIVE_MINUTES and cases["chart-raw"].slow


def test_the_report_shows_each_verdict_and_the_agreement():
    cases = {c.key: c for c in hq.cases(T0, list(range(1, 1001)))}
    timings = {
        "chart": hq.Timing(cases["chart"], first_ms=120.0, runs_ms=[20.0] * 20, rows=10_080),
        "chart-raw": hq.Timing(cases["chart-raw"], first_ms=900.0, runs_ms=[400.0] * 5, rows=10_080),
        "aggregate": hq.Timing(cases["aggregate"], first_ms=80.0, runs_ms=[900.0] * 2 + [250.0] * 17 + [50.0],
                               rows=1440, others_cpu=0.6),
    }
    meta = {"rows": 100_000_000, "devices": 1000, "attributes": 5000, "period_ms": 30_240,
            "start": T0 - timedelta(days=7), "end": T0, "reused": True,
            "timings": {"raw_s": 700.0, "rollups_s": 1200.0, "vacuum_s": 100.0}}
    sizes = [("measurements", 8, 100_000_000, 5 * 2 ** 30, 4 * 2 ** 30)]
    exported = {"rows": 1_000_000, "seconds": 10.0, "first_row_seconds": 1.5, "rss_before_kib": 60_000,
                "peak_rss_kib": 64_000, "pattern": "bench/room01/#", "start": T0 - timedelta(hours=17), "end": T0}
    text = history_report.render(meta, sizes, [("jit", "on")], timings,
                                 [("chart", "chart-raw", True)], exported, {"chart": ["Sort (...)"]})
    assert "chart of an attribute just charted" in text and "target ≤ 100 ms   met" in text
    assert "target ≤ 200 ms   NOT met" in text and "DISTURBED" in text
    assert "chart against chart-raw: 20.0× faster" in text and "chart = chart-raw: yes" in text
    assert "aggregate: calls in order (ms): 900 900 250 " in text   # 900 > 3 × the median
    assert "chart: calls in order" not in text
    assert "100,000 rows/s" in text and "+4 MiB" in text and "Sort (...)" in text


def test_api_cases_follow_the_call_they_wrap_and_answers_are_decoded_only_when_counted():
    from bench import history, history_api
    plain = [hq.Case("chart", "", None), hq.Case("chart-raw", "", None), hq.Case("aggregate", "", None)]
    api = [hq.Case("aggregate-api", "", None), hq.Case("chart-api", "", None)]
    assert [c.key for c in history.with_api_cases(plain, api)] == [
        "chart", "chart-api", "chart-raw", "aggregate", "aggregate-api"]
    assert len(history_api.JsonRows(b'{"points": [1, 2, 3]}', "points")) == 3
    assert history_api.iso(T0) == "2026-11-22T12:00:00Z"
