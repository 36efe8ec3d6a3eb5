"""The Modbus benchmark's figures from poll times: missed ticks, lateness, drift, the rate
over a window, and modbus_poll_stats deltas."""
import random

import pytest

from bench import modbus_timing as mt

T0 = 1_800_000_000_000  # epoch ms
SECOND = 1000


def fixed_schedule(n, jitter=0, phase=137, seed=1):
    """n polls at T0 + phase + k s, each late by 0..jitter ms (a timer never fires early)."""
    rng = random.Random(seed)
    return [T0 + phase + k * SECOND + rng.randint(0, jitter) for k in range(n)]


def test_a_fixed_schedule_has_no_drift_and_no_missed_tick_whatever_its_jitter():
    t = mt.device_timing(fixed_schedule(60, jitter=4), SECOND)
    assert t.polls == 60 and t.missed == 0 and t.doubled == 0
    assert min(t.lateness_ms) == 0 and max(t.lateness_ms) <= 4
    assert abs(t.drift_ms_per_min) <= 3


def test_a_timer_re_armed_after_each_poll_drifts_by_its_lateness_every_tick():
    ts, now = [], T0
    for _ in range(60):      # chained: every tick 2 ms after the previous one + 1 s
        ts.append(now)
        now += SECOND + 2
    t = mt.device_timing(ts, SECOND)
    assert t.drift_ms_per_min == pytest.approx(120, rel=0.01)
    assert t.lateness_ms[-1] == 118 and t.missed == 0


def test_a_long_window_is_judged_on_a_sample_of_its_polls():
    ts = [T0 + k * SECOND + k // 10 for k in range(3600)]  # an hour, +1 ms every 10 ticks
    assert mt.device_timing(ts, SECOND).drift_ms_per_min == pytest.approx(6, rel=0.05)
    assert mt.theil_sen([1, 1, 1], [0, 5, 9]) == 0.0


def test_one_late_poll_near_the_end_is_lateness_not_drift():
    ts = fixed_schedule(60)
    ts[-1] += 300             # a garbage collection in the last second
    t = mt.device_timing(ts, SECOND)
    assert max(t.lateness_ms) == 300 and t.drift_ms_per_min == 0


def test_ticks_without_a_poll_are_counted_from_the_gaps():
    ts = fixed_schedule(20)
    del ts[12:15]             # three ticks missed in a row
    del ts[5]                 # and one alone
    t = mt.device_timing(ts, SECOND)
    assert t.polls == 16 and t.missed == 4 and max(t.lateness_ms) == 0


def test_two_polls_within_half_an_interval_are_counted_as_doubled():
    ts = fixed_schedule(10)
    t = mt.device_timing(sorted(ts + [ts[4] + 300]), SECOND)
    assert t.doubled == 1


def test_no_poll_no_figures():
    t = mt.device_timing([], SECOND)
    assert (t.polls, t.lateness_ms, t.drift_ms_per_min) == (0, [], None)


def test_the_window_keeps_its_start_and_not_its_end():
    assert mt.in_window([999, 1000, 1500, 2000], 1.0, 2.0) == [1000, 1500]


def test_nearest_rank_percentiles():
    values = list(range(1, 101))
    assert mt.percentile(values, 50) == 50 and mt.percentile(values, 99) == 99
    assert mt.percentile(values, 100) == 100 and mt.percentile([7], 99) == 7
    assert mt.percentile([], 50) is None


def test_a_phase_sums_the_expected_devices_and_names_the_silent_and_the_worst():
    polls = {"dev001": fixed_schedule(60, phase=10),
             "dev002": fixed_schedule(59, phase=500),
             "dev003": [],
             "stranger": fixed_schedule(60)}   # not expected: left out
    polls["dev001"][30] += 40
    p = mt.phase_timing(polls, ["dev001", "dev002", "dev003"], 60.0, SECOND)
    assert (p.devices, p.polls, p.per_device_min, p.per_device_max) == (3, 119, 0, 60)
    assert p.silent == ["dev003"] and p.missed == 0
    assert p.rate == pytest.approx(119 / 60) and p.expected_rate == 3 and p.expected_polls == 180
    assert (p.lateness_max, p.worst_late_device) == (40, "dev001")
    assert p.lateness_p50 == 0 and p.drift_median == 0 and p.drift_worst == 0


def test_the_worst_drift_keeps_its_sign():
    late = [T0 + k * (SECOND - 1) for k in range(60)]    # a clock running fast: -60 ms/min
    p = mt.phase_timing({"a": fixed_schedule(60), "b": late}, ["a", "b"], 60.0, SECOND)
    assert p.worst_drift_device == "b" and p.drift_worst == pytest.approx(-60, rel=0.01)


def test_stats_deltas_sum_counters_and_keep_the_worst_lateness_since_polling_began():
    row = lambda status, polls, ok, timeouts=0, late=None: {  # noqa: E731
        "status": status, "polls": polls, "ok": ok, "timeouts": timeouts, "exceptions": 0,
        "connection_errors": 0, "garbage": 0, "overflows": 0, "late_ms_max": late}
    before = {"a": row("online", 100, 100, late=3), "b": row("online", 50, 49, 1, 9)}
    after = {"a": row("online", 160, 160, late=4), "b": row("offline", 110, 105, 5, 12),
             "c": row("online", 7, 7, late=2), "dead": row("offline", 60, 0, 60, 1)}
    d = mt.stats_delta(before, after, ["a", "b", "c", "missing"])
    assert (d["polls"], d["ok"], d["timeouts"], d["failures"]) == (127, 123, 4, 4)
    assert d["late_ms_max"] == 12 and d["online"] == 2
