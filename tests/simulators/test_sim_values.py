"""The fleet layout and the value drift of the simulators (pure code, no broker)."""
import random
import statistics

import pytest

from octopus_simulators import layout
from octopus_simulators.values import PEAK_HOUR, Drift, daily_cycle

DAY = 86400


def test_first_device_is_servidor1_and_devices_spread_over_sites_and_rooms():
    devices = layout.fleet(8)
    assert devices[0].topic == "oficina/servidores/servidor1"
    assert devices[0].status_topic == "oficina/servidores/servidor1/status"
    assert len({d.topic for d in devices}) == 8
    assert {d.site for d in devices} == {"oficina", "planta"}
    assert len({(d.site, d.room) for d in devices}) == len(layout.ROOMS)
    assert [d.topic for d in devices if d.room == "servidores"] == [
        "oficina/servidores/servidor1", "oficina/servidores/servidor2"]


def test_topic_levels_are_valid_and_every_room_sets_every_attribute():
    for device in layout.fleet(12):
        for level in device.topic.split("/"):
            assert level and not set(level) & set("+#/") and not level.startswith("$")
    names = {a.name for a in layout.ATTRIBUTES}
    assert names == {"temperatura", "humedad", "corriente", "voltaje"}
    for room in layout.ROOMS:
        assert set(room.set_points) == names
        for set_point, spread in room.set_points.values():
            assert spread > 0 and set_point - spread >= 0  # no negative humidity or current


def test_zero_devices_is_an_empty_fleet():
    assert layout.fleet(0) == []


def test_daily_cycle_peaks_mid_afternoon_and_bottoms_out_at_night():
    assert daily_cycle(PEAK_HOUR * 3600) == pytest.approx(1.0)
    assert daily_cycle(PEAK_HOUR * 3600 + DAY / 2) == pytest.approx(-1.0)
    assert daily_cycle(5 * DAY + PEAK_HOUR * 3600) == pytest.approx(1.0)


def test_drift_stays_within_its_band_over_a_long_walk():
    drift = Drift(26.0, 4.0, 0.5, random.Random(1))
    t0 = 1_800_000_000
    values = [drift.next(t0 + 2 * i) for i in range(20_000)]  # 11 hours at 2 s
    assert min(values) >= 22.0 and max(values) <= 30.0
    steps = [abs(b - a) for a, b in zip(values, values[1:])]
    assert max(steps) < 1.0, "a reading jumped instead of drifting"
    assert statistics.pstdev(values) > 0.1, "the value barely moves"


def test_drift_follows_the_daily_cycle():
    """Averaged over an hour, the afternoon is warmer than the night."""
    def hour_mean(hour):
        drift = Drift(26.0, 4.0, 0.5, random.Random(2))
        start = 1_799_971_200 + hour * 3600  # a UTC midnight, plus `hour`
        return statistics.mean(drift.next(start + i) for i in range(3600))
    assert hour_mean(PEAK_HOUR) - hour_mean(PEAK_HOUR - 12) > 2.5


def test_drift_is_reproducible_with_a_seed():
    a = Drift(230.0, 8.0, -0.1, random.Random(7))
    b = Drift(230.0, 8.0, -0.1, random.Random(7))
    assert [a.next(i) for i in range(100)] == [b.next(i) for i in range(100)]


def test_drift_refuses_a_band_of_no_width():
    with pytest.raises(ValueError, match="spread"):
        Drift(1.0, 0.0, 0.0, random.Random())
