"""The footprint benchmark's report: each service, the whole, the baseline, the verdict."""
from bench import footprint

MIB = 1024  # KiB


def test_the_report_sums_the_whole_and_judges_it_by_rss():
    peaks = {"nodered": (150 * MIB, 140 * MIB, 1), "postgres": (300 * MIB, 60 * MIB, 9),
             "mosquitto": (10 * MIB, 9 * MIB, 1)}
    text = footprint.render(peaks, (460 * MIB, 209 * MIB), (90 * MIB, 85 * MIB, 1), True)
    rows = {line[:20].strip(): line[20:].split() for line in text.splitlines()}
    assert rows["postgres"] == ["9", "315", "63"]       # MB, not MiB
    assert rows["whole stack"] == ["482", "219"]
    assert rows["the flows add"] == ["+63", "+58"]     # 150 - 90 and 140 - 85 MiB
    assert "with the demo simulators: 482 MB RSS summed (219 MB PSS)" in text
    assert text.splitlines()[3].startswith("mosquitto")  # in start order, after postgres
    assert text.rstrip().splitlines()[-2].endswith("  met")


def test_over_600_mb_of_rss_is_not_met_whatever_the_pss():
    peaks = {"nodered": (200 * MIB, 150 * MIB, 1)}
    text = footprint.render(peaks, (580 * MIB, 300 * MIB), (90 * MIB, 85 * MIB, 1), False)
    assert "without the demo simulators: 608 MB RSS summed" in text
    assert "NOT met" in text
