"""The benchmark's counting: CPU of process trees from /proc, peak RSS, sequence numbers."""
import os

from bench import measure


def stat_line(pid, comm, ppid, utime, stime, cutime=0, cstime=0):
    fields = ["S", ppid] + [0] * 9 + [utime, stime, cutime, cstime] + [0] * 35
    return f"{pid} ({comm}) " + " ".join(str(f) for f in fields)


def test_stat_is_parsed_even_when_the_name_holds_spaces_and_parentheses():
    comm, ppid, own, children = measure.parse_stat(stat_line(7, "node-red (x) y", 1, 10, 5, 3, 2))
    assert (comm, ppid, own, children) == ("node-red (x) y", 1, 15, 5)


def test_a_tree_sums_live_descendants_and_reaped_children_but_not_excluded_ones():
    table = {1: ("init", 0, 999),
             10: ("postgres", 1, 100),     # postmaster: own + reaped backends (cutime)
             11: ("postgres", 10, 40),     # a live backend
             12: ("postgres", 10, 7),      # the benchmark's own poller backend
             13: ("postgres", 11, 3),      # a grandchild
             20: ("mosquitto", 1, 50)}
    ticks = measure.CLOCK_TICKS
    assert measure.tree_cpu_seconds(table, [10]) * ticks == 150
    assert measure.tree_cpu_seconds(table, [10], exclude={12}) * ticks == 143
    assert measure.tree_cpu_seconds(table, [10, 20], exclude={12}) * ticks == 193
    assert measure.tree_cpu_seconds(table, [99]) == 0


def test_this_processes_cpu_and_peak_rss_are_readable():
    table = measure.process_table()
    assert os.getpid() in table
    assert measure.status_kib(os.getpid(), "VmHWM") > 1000
    assert measure.main_thread_cpu_seconds(os.getpid()) >= 0
    assert measure.status_kib(2 ** 22 + 12345, "VmHWM") is None


def test_cpu_meter_reports_the_difference_per_group():
    meter = measure.CpuMeter({"me": [os.getpid()]})
    before = meter.snapshot()
    sum(i * i for i in range(300_000))
    delta = meter.delta(before, meter.snapshot())
    assert set(delta) == {"me"} and delta["me"] >= 0


def test_tally_counts_lost_duplicated_and_foreign_numbers():
    tally = measure.SequenceTally(5)
    for seq in (1, 2, 2, 2, 5, -1, 6):
        tally.add(seq)
    assert (tally.received, tally.distinct, tally.lost, tally.duplicated, tally.foreign) == (5, 3, 2, 2, 2)


def test_machine_busy_time_leaves_out_idle_and_iowait():
    stat = "cpu  100 5 50 1000 70 3 2 10 0 0\ncpu0 1 2 3\n"
    assert measure.machine_busy_seconds(stat) * measure.CLOCK_TICKS == 170
    assert measure.machine_busy_seconds() > 0


def test_memory_of_a_process_and_of_a_tree(tmp_path):
    for pid, rss, pss in ((1, 900, 300), (2, 500, 100), (3, 40, 40)):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "smaps_rollup").write_text(
            f"55d0-7ffd ---p 00000000 00:00 0  [rollup]\nRss:  {rss} kB\nPss:  {pss} kB\n"
            f"Pss_Anon:  {pss // 2} kB\nShared_Clean:  0 kB\n")
    table = {1: ("postgres", 0, 0), 2: ("postgres", 1, 0), 3: ("node", 0, 0),
             4: ("postgres", 1, 0)}  # 4: gone before its memory was read
    assert measure.memory_kib(2, proc=tmp_path) == (500, 100)
    assert measure.memory_kib(4, proc=tmp_path) is None
    assert measure.tree_memory_kib(table, [1], proc=tmp_path) == (1400, 400, 2)
    assert measure.tree_memory_kib(table, [1, 3], proc=tmp_path) == (1440, 440, 3)


def test_the_memory_of_this_very_process_is_read_from_proc():
    rss, pss = measure.memory_kib(os.getpid())
    assert 0 < pss <= rss
    assert measure.status_kib(os.getpid(), "VmRSS") * 0.5 < rss
