"""What `./octopus bench modbus` prints and how it judges the Modbus target; the free port
range its simulator listens on."""
import socket

from bench import modbus, modbus_report
from bench.modbus_report import Phase
from bench.modbus_timing import PhaseTiming


def timing(polls=6000, missed=0, late_max=5, drift=0.5, window_s=60.0, silent=()):
    return PhaseTiming(devices=100, window_s=window_s, interval_ms=1000, polls=polls,
                       per_device_min=polls // 100, per_device_max=polls // 100,
                       silent=list(silent), missed=missed, doubled=0, lateness_p50=1,
                       lateness_p99=3, lateness_max=late_max, worst_late_device="dev042",
                       drift_median=0.0, drift_worst=drift, worst_drift_device="dev007")


def counters(**extra):
    c = {k: 0 for k in ("polls", "ok", "timeouts", "exceptions", "connection_errors", "garbage",
                        "overflows", "failures")}
    c.update(polls=6000, ok=6000, online=100, late_ms_max=4)
    c.update(extra)
    return c


def phases(faulty_timing=None, octopus_timing=None):
    base = Phase("1", "baseline", timing(), 60.0, {"baseline": 3.0, "simulator": 12.0},
                 poller="baseline", counters={"failures": 0, "overflows": 0, "late_ms_max": 2})
    octo = Phase("2", "Octopus", octopus_timing or timing(), 60.0,
                 {"node-red": 9.0, "mosquitto": 1.5, "postgres": 4.5, "simulator": 12.0},
                 poller="node-red", counters=counters(), readings_per_s=1000.0,
                 nodered_main_s=7.0, nodered_rss_kib=150 * 1024, nodered_hwm_kib=180 * 1024)
    faults = Phase("3", "Octopus + faults", faulty_timing or timing(), 60.0,
                   {"node-red": 9.6, "simulator": 12.0}, poller="node-red", counters=counters(),
                   faulty={"dead": {"what": "refused", "status": "offline", "polls": 60,
                                    "connection_errors": 60, "last_error": "connection: ECONNREFUSED"}})
    return [base, octo, faults]


def target(text, start):
    return next(line for line in text.splitlines() if line.startswith(start))


def test_the_report_shows_the_figures_and_judges_each_target():
    text = modbus_report.render(phases(), "load: 100 devices")
    assert "load: 100 devices" in text
    assert "platform (Node-RED + Mosquitto + PostgreSQL): 25.0 %, 2,500 µs/poll (5.0× the bare poller's 500 µs/poll)" in text
    assert "readings stored: 1,000/s" in text and "RSS 150 MiB at the end, peak 180 MiB" in text
    assert "dead (refused): offline, 60 polls" in text
    assert target(text, "  (2) Octopus: polled every second").endswith(" met")
    assert target(text, "  (2) Octopus: no drift").endswith(" met")
    assert target(text, "  (3) a dead and a hung device stall nothing").endswith(" met")
    assert target(text, "  (1) baseline, same yardstick: no drift").endswith(" met")


def test_missed_ticks_drift_and_a_stall_are_not_met():
    text = modbus_report.render(phases(faulty_timing=timing(late_max=800),
                                       octopus_timing=timing(polls=5990, missed=3, drift=-60)),
                                "load")
    assert target(text, "  (2) Octopus: polled every second").endswith("NOT met")
    assert target(text, "  (2) Octopus: no drift: worst device -60.0 ms/min").endswith("NOT met")
    assert target(text, "  (3) a dead and a hung device stall nothing").endswith("NOT met")
    assert "latest poll: dev042, 800 ms" in text


def test_a_silent_device_fails_the_rate_even_if_the_total_is_enough():
    t = timing(polls=6000, silent=["dev100"])
    assert not modbus_report.every_second(t)


def test_a_short_window_widens_the_drift_target_to_what_whole_ms_can_tell():
    assert modbus_report.drift_limit(timing(window_s=60.0)) == 5.0
    assert modbus_report.drift_limit(timing(window_s=6.0)) == 45.0
    assert modbus_report.no_drift(timing(window_s=6.0, drift=-15.0))


def test_the_simulators_ports_are_free_and_below_the_ephemeral_range():
    base = modbus.free_port_range(5)
    assert base + 5 <= modbus.ephemeral_low()
    for port in range(base, base + 5):
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
