"""What `./octopus bench history` prints: the machine, the data, a table of the calls (first,
median, p95), the export, whether the answers agree, and the targets met or NOT met."""
from . import report

DISTURBED = report.DISTURBED   # other programs' CPU (in cores) above which a figure is marked

SIZES_SQL = """
SELECT t.parent, count(*) AS partitions, sum(c.reltuples)::bigint AS rows,
       sum(pg_table_size(p.relid))::bigint AS table_bytes,
       sum(pg_indexes_size(p.relid))::bigint AS index_bytes
  FROM unnest(ARRAY['measurements', 'measurements_minute', 'group_minute']) AS t(parent),
       pg_partition_tree(t.parent::regclass) AS p JOIN pg_class c ON c.oid = p.relid
 WHERE p.isleaf AND c.reltuples > 0
 GROUP BY t.parent ORDER BY sum(c.reltuples) DESC"""
SETTINGS = ("shared_buffers", "work_mem", "effective_cache_size", "random_page_cost", "jit",
            "max_parallel_workers_per_gather")


def table_sizes(conn):
    """[(table, partitions, rows (planner's count after ANALYZE), table bytes, index bytes)]."""
    return [tuple(r) for r in conn.execute(SIZES_SQL).fetchall()]


def settings(conn):
    return [(name, conn.execute(f"SHOW {name}").fetchone()[0]) for name in SETTINGS]


def machine():
    """The ingest report's machine lines that matter here."""
    return [(k, v) for k, v in report.machine() if k in ("cpu", "memory", "kernel", "postgresql", "python")]


def gib(n):
    return f"{n / 2 ** 30:.1f} GiB" if n >= 2 ** 30 else f"{n / 2 ** 20:.0f} MiB"


def ms(value):
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def data_lines(meta, sizes):
    lines = [f"data: {meta['rows']:,} readings, {meta['devices']:,} devices × "
             f"{meta['attributes'] // meta['devices']} attributes (bench/roomNN/"
             f"dev0001…dev{meta['devices']:04d}/{{temperatura, humedad, co2, presion, voltaje}}), one "
             f"reading per attribute every {meta['period_ms'] / 1000:g} s, "
             f"{meta['start']:%Y-%m-%d %H:%M} → {meta['end']:%Y-%m-%d %H:%M} UTC"]
    for table, parts, rows, table_bytes, index_bytes in sizes:
        lines.append(f"  {table:<20} {rows:>13,} rows in {parts} partition{'s' if parts > 1 else ''}: "
                     f"{gib(table_bytes)} + {gib(index_bytes)} of indexes")
    t = meta["timings"]
    how = "loaded earlier and reused" if meta.get("reused") else "loaded in this run"
    raw_rate = meta["rows"] / t["raw_s"] if t.get("raw_s") else 0
    lines.append(f"  load ({how}): raw rows {t.get('raw_s', 0):,.0f} s ({raw_rate:,.0f} rows/s, "
                 f"primary key in place), rollups by refresh_rollups() {t.get('rollups_s', 0):,.0f} s, "
                 f"VACUUM ANALYZE {t.get('vacuum_s', 0):,.0f} s")
    return lines


def timing_lines(timings):
    head = (f"{'key':<20} {'call':<66} {'rows':>6} {'first':>7} {'median':>7} {'p95':>7} {'max':>7} "
            f"{'calls':>5} {'others':>6} {'target':>7}  verdict")
    lines = [head, "-" * len(head)]
    for key, t in timings.items():
        c = t.case
        target = f"≤ {c.target_ms:.0f}" if c.target_ms else ""
        others = f"{t.others_cpu * 100:.0f} %"
        lines.append(f"{key:<20} {c.title:<66} {t.rows:>6,} {ms(t.first_ms):>7} {ms(t.median_ms):>7} "
                     f"{ms(t.p95_ms):>7} {ms(max(t.runs_ms)):>7} {len(t.runs_ms):>5} {others:>6} "
                     f"{target:>7}  {t.verdict}")
    disturbed = [k for k, t in timings.items() if t.others_cpu > DISTURBED]
    lines.append("")
    lines.append("ms of client wall time per call (psycopg, rows as dicts as the portal's pool hands "
                 "them out, fetch included; the API's: Flask's test client, JSON built, not parsed). "
                 "first: the first call on a new connection just after PostgreSQL restarted (empty "
                 "shared buffers, the kernel's page cache as it was). median, p95, max: the warm "
                 "calls, on a new connection per call kind after one untimed call. others: CPU used "
                 "meanwhile by other programs on the machine, % of one core.")
    if disturbed:
        lines.append(f"DISTURBED: other programs kept more than {DISTURBED * 100:.0f} % of a core busy "
                     f"during {', '.join(disturbed)}: those figures are worse than on a quiet machine")
    return lines


def ratio_lines(timings):
    lines = []
    for fast, slow in (("chart", "chart-raw"), ("aggregate", "aggregate-raw"),
                       ("aggregate-attributes", "aggregate-raw")):
        if fast in timings and slow in timings:
            a, b = timings[fast].median_ms, timings[slow].median_ms
            how = f"{b / a:,.1f}× faster" if a <= b else f"{a / b:,.1f}× SLOWER"
            lines.append(f"  {fast} against {slow}: {how} (median {ms(a)} ms vs {ms(b)} ms)")
    return lines


def export_lines(exported):
    if not exported:
        return []
    rate = exported["rows"] / exported["seconds"]
    return [f"CSV export: {exported['rows']:,} rows of '{exported['pattern']}', "
            f"{exported['start']:%Y-%m-%d %H:%M:%S} → {exported['end']:%Y-%m-%d %H:%M:%S} UTC, "
            f"history.export_raw() + csv.writer → /dev/null, in a process of its own:",
            f"  {rate:,.0f} rows/s ({exported['seconds']:.1f} s, first row after "
            f"{exported['first_row_seconds']:.2f} s); peak RSS {exported['peak_rss_kib'] / 1024:.0f} MiB "
            f"({exported['rss_before_kib'] / 1024:.0f} MiB before the export began: "
            f"+{(exported['peak_rss_kib'] - exported['rss_before_kib']) / 1024:.0f} MiB)"]


TARGET_LABELS = {
    "chart": "7-day per-minute chart of an attribute just charted",
    "chart-others": "7-day per-minute chart of another attribute",
    "aggregate": "24-h aggregate of 1,000 devices (a whole site)",
    "aggregate-attributes": "24-h aggregate of 1,000 devices (no group)",
}


def target_lines(timings, rows):
    lines = [f"targets (BRIEF.md, Targets), on {rows:,} rows: p95 of the warm calls"]
    for key, t in timings.items():
        if t.case.target_ms is None:
            continue
        lines.append(f"  {TARGET_LABELS.get(key, key):<52} p95 {ms(t.p95_ms):>6} ms (median "
                     f"{ms(t.median_ms)})   target ≤ {t.case.target_ms:.0f} ms   {t.verdict}")
    return lines


def calls_lines(timings):
    """The calls in order where they are far apart (a plan or a cache changing on the way)."""
    lines = []
    for key, t in timings.items():
        if len(t.runs_ms) > 1 and max(t.runs_ms) > 3 * t.median_ms:
            lines.append(f"  {key}: calls in order (ms): " + " ".join(ms(v) for v in t.runs_ms))
    return lines


def render(meta, sizes, settings_, timings, agreements, exported, plans, machine_info=None):
    lines = []
    if machine_info:
        lines.append("machine")
        lines += [f"  {k:<11} {v}" for k, v in machine_info]
        lines.append("  settings    " + ", ".join(f"{k} {v}" for k, v in settings_)
                     + " (as the measured calls see them; the server runs with the launcher's settings)")
        lines.append("")
    lines += data_lines(meta, sizes)
    lines.append("")
    lines += timing_lines(timings)
    lines.append("")
    lines += calls_lines(timings)
    lines += ratio_lines(timings)
    if agreements:
        lines.append("  same answers: " + ", ".join(
            f"{a} = {b}: {'yes' if same else 'NO'}" for a, b, same in agreements))
    lines.append("")
    lines += export_lines(exported)
    if exported:
        lines.append("")
    lines += target_lines(timings, meta["rows"])
    for key, statements in plans.items():
        for i, plan in enumerate(statements, 1):
            lines.append("")
            lines.append(f"EXPLAIN (ANALYZE, TIMING OFF, BUFFERS): {key}, statement {i} of {len(statements)}")
            lines.append(plan)
    return "\n".join(lines)
