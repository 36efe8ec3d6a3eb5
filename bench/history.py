"""`./octopus bench history`: the history queries on 100 million rows (BRIEF.md, Targets:
a 7-day per-minute chart in ≤ 100 ms, the per-minute aggregate of a day of 1,000 devices in
≤ 200 ms), each beside the same answer computed from raw rows, and a CSV export of 1 million
rows (rows/s, peak RSS). PostgreSQL is started with the launcher's code; the data is
generated once per folder (--data-dir) and reused."""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from . import history_api, history_data, history_export, history_queries, history_report
from .history_stack import DataStack
from .measure import machine_busy_seconds, process_table, tree_cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
EXPORT_PATTERN = "bench/room01/#"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="./octopus bench history", description=__doc__)
    p.add_argument("--rows", type=int, default=100_000_000,
                   help="raw readings to generate over 7 days (default 100,000,000: the load "
                        "took 27 minutes here, 10,000,000 about 5)")
    p.add_argument("--data-dir", type=Path, metavar="DIR",
                   help="keep the cluster in DIR and reuse it in later runs (default: a "
                        "temporary folder, removed at the end unless --keep)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder and say where")
    p.add_argument("--repeat", type=int, default=20, help="warm calls per query (default 20)")
    p.add_argument("--slow-repeat", type=int, default=5,
                   help="warm calls of the slow ones: raw baselines, per-attribute aggregate of "
                        "1,000 devices (default 5)")
    p.add_argument("--export-rows", type=int, default=1_000_000,
                   help="rows in the CSV export (default 1,000,000; 0: no export)")
    p.add_argument("--only", metavar="KEYS",
                   help="comma-separated cases to run, by their keys in the report's first column "
                        "(default all)")
    p.add_argument("--pg-options", metavar="OPTIONS",
                   help="session settings for every connection the measured calls use, as libpq's "
                        "PGOPTIONS, e.g. \"-c jit=off\": to measure a proposed setting")
    p.add_argument("--explain", action="store_true",
                   help="print EXPLAIN (ANALYZE, TIMING OFF, BUFFERS) of every statement")
    return p.parse_args(argv)


def ensure_data(stack, layout, log):
    """The data's meta: reused if the folder holds a load of this size, else loaded (or a
    load that stopped half-way finished)."""
    with stack.connect() as conn:
        meta = history_data.read_meta(conn)
        if meta is not None and meta["rows"] != layout.rows:
            raise SystemExit(f"{stack.state_dir} holds {meta['rows']:,} rows, not {layout.rows:,}: "
                             f"pass --rows {meta['rows']} or another --data-dir")
        if meta is not None and meta["complete"]:
            log(f"reusing the {meta['rows']:,} rows loaded in {stack.state_dir}")
            meta["reused"] = True
            return meta
        if meta is None and conn.execute("SELECT count(*) FROM devices").fetchone()[0]:
            raise SystemExit(f"{stack.state_dir} holds devices but no benchmark data: use another "
                             f"--data-dir")
        log(f"{'finishing the load of' if meta else 'loading'} {layout.rows:,} rows "
            f"({layout.devices:,} devices × {len(history_data.KINDS)} attributes, one reading each "
            f"every {layout.period_ms / 1000:g} s over {layout.data_span().total_seconds() / 86400:g} days)")
        with stack.connect_superuser() as su:
            meta = history_data.load(conn, layout, log=log, superuser_conn=su)
        meta["reused"] = False
        return meta


def cpu_now(postgres_pid):
    """(machine busy s, this process's CPU s, PostgreSQL's CPU s) now."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    return (machine_busy_seconds(), me.ru_utime + me.ru_stime,
            tree_cpu_seconds(process_table(), [postgres_pid]))


def measure(stack, meta, cases, args, log):
    """{key: Timing}: each case's first call on a new connection just after a restart, then
    its warm calls on another new connection (one untimed call first), as a pooled portal
    connection makes them: the first five of a statement unprepared, then prepared (psycopg),
    and PostgreSQL may switch a prepared statement to a generic plan after five more."""
    timings = {c.key: history_queries.Timing(c) for c in cases}
    end = meta["end"]
    log("restarting PostgreSQL: empty shared buffers and caches for the first calls")
    stack.restart_postgres()
    for case in cases:
        with stack.connect(portal=True) as conn, \
                history_queries.not_rolled_up(conn, end, case.pending):
            started = time.perf_counter()
            case.run(conn, 0)
            timings[case.key].first_ms = (time.perf_counter() - started) * 1000
    for case in cases:
        t = timings[case.key]
        n = args.slow_repeat if case.slow else args.repeat
        log(f"[{case.key}] {n} calls")
        with stack.connect(portal=True) as conn, \
                history_queries.not_rolled_up(conn, end, case.pending):
            case.run(conn, n)   # warm-up, not counted
            before = cpu_now(stack.postgres_pid())
            started = time.perf_counter()
            for i in range(n):
                call = time.perf_counter()
                t.result = case.run(conn, i)
                t.runs_ms.append((time.perf_counter() - call) * 1000)
            elapsed = time.perf_counter() - started
            after = cpu_now(stack.postgres_pid())
        t.rows = len(t.result)
        ours = (after[1] - before[1]) + (after[2] - before[2])
        t.others_cpu = max(after[0] - before[0] - ours, 0.0) / elapsed
    return timings


def explain_all(stack, meta, cases):
    """{key: [plan text]} of every statement each case runs, warm."""
    plans = {}
    with stack.connect(portal=True) as conn:
        for case in cases:
            with history_queries.not_rolled_up(conn, meta["end"], case.pending):
                plans[case.key] = history_queries.explain(conn, case)
    return plans


def export(stack, layout, meta, rows):
    """The CSV export in a process of its own (bench/history_export.py): its JSON answer."""
    start, end = layout.export_range(meta["end"], rows)
    env = stack.env(OCTOPUS_BENCH_CONNINFO=stack.conninfo(application_name="octopus-bench-export"))
    out = subprocess.run([sys.executable, "-m", "bench.history_export", EXPORT_PATTERN,
                          start.isoformat(), end.isoformat()],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if out.returncode:
        raise RuntimeError(f"the export failed: {out.stderr.strip()[-2000:]}")
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    answer.update(pattern=EXPORT_PATTERN, start=start, end=end)
    return answer


def with_api_cases(cases, through_api):
    """The API's cases each after the case whose call it wraps ('chart-api' after 'chart')."""
    out = []
    for case in cases:
        out.append(case)
        out += [c for c in through_api if c.key == case.key + "-api"]
    return out


def attribute_ids(conn):
    return [r[0] for r in conn.execute(
        "SELECT a.id FROM attributes a JOIN devices d ON d.id = a.device_id"
        " WHERE d.site = %s AND a.name = %s ORDER BY d.id",
        (history_data.SITE, history_queries.ATTRIBUTE))]


def main(argv=None):
    args = parse_args(argv)
    log = lambda m: print(f"bench history: {m}", flush=True)  # noqa: E731
    if args.pg_options:   # libpq reads it for every connection: ours, the app's pool, the export's
        os.environ["PGOPTIONS"] = args.pg_options
    layout = history_data.Layout(rows=args.rows)
    keep = args.keep or args.data_dir is not None
    stack = DataStack(args.data_dir, keep=keep)
    try:
        log(f"starting PostgreSQL in {stack.state_dir}")
        stack.start()
        started = time.monotonic()
        meta = ensure_data(stack, layout, log)
        with stack.connect() as conn:
            ids = attribute_ids(conn)
            topic = history_api.chart_topic(conn, history_queries.chart_attribute(ids))
        with history_api.api_cases(stack, meta["end"], topic, log) as through_api:
            cases = with_api_cases(history_queries.cases(meta["end"], ids), through_api)
            if args.only:
                wanted = set(args.only.split(","))
                cases = [c for c in cases if c.key in wanted]
            timings = measure(stack, meta, cases, args, log)
        plans = explain_all(stack, meta, [c for c in cases if c not in through_api]) if args.explain else {}
        exported = None
        if args.export_rows:
            log(f"exporting {args.export_rows:,} rows of {EXPORT_PATTERN} as CSV")
            exported = export(stack, layout, meta, args.export_rows)
            if args.explain:
                with stack.connect(portal=True) as conn:
                    plans["export"] = [history_queries.shorten_arrays(history_export.explain(
                        conn, EXPORT_PATTERN, exported["start"], exported["end"]))]
        with stack.connect() as conn:
            sizes = history_report.table_sizes(conn)
            settings = history_report.settings(conn)
        log(f"done in {time.monotonic() - started:.0f} s")
        print()
        if args.pg_options:
            print(f"session settings of the measured calls: PGOPTIONS={args.pg_options!r}")
        print(history_report.render(meta, sizes, settings, timings,
                                    history_queries.agreements(timings), exported, plans,
                                    history_report.machine()))
        if keep:
            print(f"\ndata kept in {stack.state_dir}: `./octopus bench history --data-dir "
                  f"{stack.state_dir}` reuses it; remove the folder when done")
        return 0
    finally:
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
