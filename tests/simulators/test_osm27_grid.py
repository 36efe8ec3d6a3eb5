"""The recloser model: realistic, self-consistent values, a daily load curve, trips and
lockout, reproducible with a seed. Driven with explicit times, no sleeping."""
import math
import random
import statistics
from datetime import datetime, timedelta, timezone

import pytest

from octopus_simulators.grid import (MEASUREMENTS, NOMINAL_PHASE_V, FeederSettings, Recloser,
                                     load_fraction)

UTC = timezone.utc
MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
NO_TRIPS = FeederSettings(mean_time_between_trips_s=1e12)


def recloser(seed=1, settings=NO_TRIPS):
    return Recloser(random.Random(seed), settings, tz=UTC)


def run(model, start, seconds, step=1.0):
    return [model.step(start + i * step) for i in range(int(seconds / step))]


def test_a_day_of_readings_is_realistic_and_self_consistent():
    model = recloser()
    day = run(model, MIDNIGHT, 86400, step=30)
    assert all(set(v) == set(MEASUREMENTS) and v["estado"] == "closed" for v in day)
    for v in day:
        amps = [v["ia"], v["ib"], v["ic"]]
        volts = [v["va"], v["vb"], v["vc"]]
        # balanced phases: each within 5 % of their mean
        assert max(abs(i / statistics.mean(amps) - 1) for i in amps) < 0.05, v
        # 22.9 kV feeder: 13,221 V phase-to-neutral ± 1 %
        assert all(abs(u / NOMINAL_PHASE_V - 1) <= 0.01 + 1e-9 for u in volts), v
        assert 0.92 <= v["fp"] <= 0.98, v
        s_kva = sum(u * i for u, i in zip(volts, amps)) / 1000
        assert v["p_act"] == pytest.approx(s_kva * v["fp"], rel=1e-9)
        assert v["p_react"] == pytest.approx(s_kva * math.sin(math.acos(v["fp"])), rel=1e-9)
        assert v["fp"] == pytest.approx(v["p_act"] / math.hypot(v["p_act"], v["p_react"]))
    currents = [v["ia"] for v in day]
    assert 60 < min(currents) and max(currents) < 260     # about 40 % … 100 % of ~200 A
    fps = [v["fp"] for v in day]
    assert max(fps) - min(fps) > 0.01, "the power factor should wander over a day"
    fps = [v["fp"] for v in run(model, MIDNIGHT + 86400, 3600)]
    assert max(abs(b - a) for a, b in zip(fps, fps[1:])) < 0.005, "... slowly, second by second"


def test_the_evening_peak_carries_more_than_twice_the_night_load():
    def mean_current(hour):
        model = recloser(seed=5)
        return statistics.mean(v["ia"] for v in run(model, MIDNIGHT + hour * 3600, 1800))
    peak, night = mean_current(19), mean_current(3)
    assert 150 < peak < 250
    assert peak / night > 2.0
    assert mean_current(11) > night * 1.3            # the late-morning hump
    assert load_fraction(19.0) == pytest.approx(1.0)
    assert load_fraction(3.0) == pytest.approx(0.4, abs=0.03)


def test_the_curve_follows_local_time():
    lima = timezone(timedelta(hours=-5))
    model = Recloser(random.Random(1), NO_TRIPS, tz=lima)
    assert model.local_hour(MIDNIGHT + 19 * 3600) == pytest.approx(14.0)


def test_a_trip_opens_with_zero_currents_and_recloses_after_the_dead_time():
    model = recloser()
    t = MIDNIGHT + 19 * 3600
    run(model, t - 60, 60)
    model.trip(t)
    opened = model.step(t)
    assert opened["estado"] == "open"
    assert opened["ia"] == opened["ib"] == opened["ic"] == 0
    assert opened["p_act"] == opened["p_react"] == opened["fp"] == 0
    assert opened["va"] == pytest.approx(NOMINAL_PHASE_V, rel=0.01)   # the source side is live
    assert model.step(t + NO_TRIPS.reclose_delay_s - 1)["estado"] == "open"
    closed = model.step(t + NO_TRIPS.reclose_delay_s)
    assert closed["estado"] == "closed" and closed["ia"] > 100


def test_a_lasting_fault_locks_out_after_the_shots_until_reset_or_closed():
    settings = FeederSettings(mean_time_between_trips_s=1e12, reclose_delay_s=5, shots=3,
                              lockout_reset_s=600)
    model = recloser(settings=settings)
    t = MIDNIGHT
    model.trip(t, permanent=True)
    states = [model.step(t + s)["estado"] for s in range(0, 16)]
    assert states == ["open"] * 15 + ["lockout"]    # three failed recloses at 5, 10, 15 s
    assert model.step(t + 15 + 599)["estado"] == "lockout"
    assert model.step(t + 15 + 600)["estado"] == "closed"
    model.lockout(t + 700)
    assert model.step(t + 701)["estado"] == "lockout"
    model.close()
    assert model.step(t + 702)["estado"] == "closed"


def test_trips_come_at_the_configured_mean_rate():
    settings = FeederSettings(mean_time_between_trips_s=120, reclose_delay_s=5,
                              permanent_fault_probability=0)
    model = recloser(seed=3, settings=settings)
    states = [v["estado"] for v in run(model, MIDNIGHT, 4 * 3600)]
    trips = sum(a == "closed" and b == "open" for a, b in zip(states, states[1:]))
    assert 80 < trips < 160     # about 4 h / (120 s + 5 s)
    assert "lockout" not in states


def test_a_seed_gives_the_same_run():
    settings = FeederSettings(mean_time_between_trips_s=300)
    a, b = recloser(7, settings), recloser(7, settings)
    assert run(a, MIDNIGHT, 3600) == run(b, MIDNIGHT, 3600)
    assert run(recloser(8), MIDNIGHT, 10) != run(recloser(7), MIDNIGHT, 10)
