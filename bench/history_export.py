"""One CSV export through history.export_raw() and csv.writer into /dev/null, in a process of
its own so that its peak RSS is the export's alone (not the benchmark's load phase).

    python -m bench.history_export PATTERN FROM TO    (connection string in OCTOPUS_BENCH_CONNINFO)

prints one JSON line: rows, seconds, seconds to the first row, RSS before and peak RSS."""
import csv
import json
import os
import sys
import time
from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from octopus_portal import history

from .measure import status_kib

HEADER = ("time", "site", "room", "device", "attribute", "value", "text", "unit")


def csv_row(r):
    """A stored reading as a CSV line's fields, the time in ISO 8601."""
    return (r["ts"].isoformat(), r["site"], r["room"], r["device"], r["attribute"], r["num"],
            r["txt"], r["unit"])


def export(conninfo, pattern, start, end, out):
    """Write the export to `out`; returns (rows, seconds, seconds to the first row)."""
    with psycopg.connect(conninfo, autocommit=True, row_factory=dict_row) as conn:
        started = time.perf_counter()
        first = None
        writer = csv.writer(out)
        writer.writerow(HEADER)
        n = 0
        for row in history.export_raw(conn, history.Selection.parse(pattern), start, end):
            writer.writerow(csv_row(row))
            n += 1
            if first is None:
                first = time.perf_counter() - started
        return n, time.perf_counter() - started, first


def explain(conn, pattern, start, end):
    """EXPLAIN (ANALYZE, TIMING OFF, BUFFERS) of the export's query (a dict_row connection)."""
    ids = [r["id"] for r in history.attributes(conn, history.Selection.parse(pattern))]
    rows = conn.execute("EXPLAIN (ANALYZE, TIMING OFF, BUFFERS) " + history.EXPORT_RAW_SQL,
                        {"ids": ids, "start": start, "end": end}).fetchall()
    return "\n".join(next(iter(r.values())) for r in rows)


def main(argv):
    pattern, start, end = argv[0], datetime.fromisoformat(argv[1]), datetime.fromisoformat(argv[2])
    pid = os.getpid()
    rss_before = status_kib(pid, "VmHWM")
    with open(os.devnull, "w", newline="") as out:
        rows, seconds, first = export(os.environ["OCTOPUS_BENCH_CONNINFO"], pattern, start, end, out)
    print(json.dumps({"rows": rows, "seconds": seconds, "first_row_seconds": first,
                      "rss_before_kib": rss_before, "peak_rss_kib": status_kib(pid, "VmHWM")}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
