"""What the benchmark reads from /proc (CPU time and memory of process trees, peak RSS,
threads) and how it counts sequence numbers."""
import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def parse_stat(text):
    """(comm, ppid, own CPU ticks, reaped children's CPU ticks) from a /proc/<pid>/stat line."""
    # comm is in parentheses and may itself hold spaces or ')': split at the last ')'.
    comm = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return comm, ppid, utime + stime, cutime + cstime


def process_table(proc=PROC):
    """{pid: (comm, ppid, ticks)} of every process now, ticks = own CPU + reaped children's."""
    table = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm, ppid, own, children = parse_stat((entry / "stat").read_text())
        except (OSError, ValueError):
            continue  # exited meanwhile
        table[int(entry.name)] = (comm, ppid, own + children)
    return table


def descendants(table, roots, exclude=()):
    """`roots` and every process below them, without the subtrees of `exclude`."""
    children = {}
    for pid, (_, ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = set(), [p for p in roots if p in table and p not in exclude]
    while stack:
        pid = stack.pop()
        if pid in found:
            continue
        found.add(pid)
        stack.extend(c for c in children.get(pid, ()) if c not in exclude)
    return found


def tree_cpu_seconds(table, roots, exclude=()):
    """CPU seconds (user + system) used so far by the trees under `roots`.

    A child that has exited and been reaped counts in its parent's cutime/cstime, so
    short-lived PostgreSQL backends are not missed; a live one counts under its own pid.
    """
    return sum(table[p][2] for p in descendants(table, roots, exclude)) / CLOCK_TICKS


def memory_kib(pid, proc=PROC):
    """(RSS, PSS) of a process in KiB from /proc/<pid>/smaps_rollup; None if it is gone. PSS
    shares each page among the processes that map it: summed over processes, what they
    cost the machine (RSS counts shared memory, e.g. PostgreSQL's buffers, in each)."""
    try:
        text = (proc / str(pid) / "smaps_rollup").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            values[key] = int(rest.split()[0])
    return values.get("Rss", 0), values.get("Pss", 0)


def tree_memory_kib(table, roots, proc=PROC):
    """(RSS, PSS, processes) summed over the trees under `roots`, in KiB."""
    rss = pss = count = 0
    for pid in descendants(table, roots):
        found = memory_kib(pid, proc)
        if found is not None:
            rss, pss, count = rss + found[0], pss + found[1], count + 1
    return rss, pss, count


class CpuMeter:
    """CPU seconds per named group of process trees, between two snapshots."""

    def __init__(self, groups, exclude=()):
        self.groups = {name: list(pids) for name, pids in groups.items()}
        self.exclude = set(exclude)

    def snapshot(self):
        table = process_table()
        return {name: tree_cpu_seconds(table, pids, self.exclude)
                for name, pids in self.groups.items()}

    @staticmethod
    def delta(before, after):
        return {name: after[name] - before.get(name, 0.0) for name in after}


def machine_busy_seconds(stat_text=None):
    """CPU seconds all cores have spent not idle since boot (/proc/stat: every field but
    idle and iowait; guest time is already inside user)."""
    text = stat_text if stat_text is not None else (PROC / "stat").read_text()
    fields = [int(f) for f in text.splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def status_kib(pid, key):
    """A `kB` value from /proc/<pid>/status (VmHWM: peak RSS, VmRSS: RSS now); None if gone."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def main_thread_cpu_seconds(pid):
    """CPU seconds of a process's main thread alone (for Node.js: the event loop), or None."""
    try:
        return parse_stat((PROC / str(pid) / "task" / str(pid) / "stat").read_text())[2] / CLOCK_TICKS
    except OSError:
        return None


class SequenceTally:
    """How often each sequence number 1..n was seen (saturating at 255)."""

    def __init__(self, n):
        self.n = n
        self.counts = bytearray(n + 1)
        self.received = 0     # in range, duplicates included
        self.foreign = 0      # anything else (warm-up probes, garbage)

    def add(self, seq):
        if 1 <= seq <= self.n:
            self.received += 1
            if self.counts[seq] < 255:
                self.counts[seq] += 1
        else:
            self.foreign += 1

    @property
    def distinct(self):
        return self.n - self.lost

    @property
    def lost(self):
        return self.counts.count(0) - 1   # index 0 is never a sequence number

    @property
    def duplicated(self):
        return self.received - self.distinct
