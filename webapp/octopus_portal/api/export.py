"""CSV export: raw readings or per-minute aggregates, streamed so memory stays flat."""
import csv
import io
import re
from itertools import chain

from flask import Response, current_app

from .. import concurrency, history
from ..db import POOL, get_db
from . import bp
from .auth import narrow
from .errors import ApiError, quoted
from .params import iso_in, pattern, text, time_range, zone
from .read import aggregate_rows

RAW_COLUMNS = ("time", "site", "room", "device", "attribute", "value", "unit")
AGGREGATE_COLUMNS = ("minute", "mean", "min", "max", "count", "min_device", "max_device")
CHUNK_CHARS = 64 * 1024  # rows are sent in chunks of about this size, not one write each
# A spreadsheet runs a cell that starts with one of these as a formula ("CSV injection");
# a text cell that does (a device named "=cmd|...") gets a leading apostrophe, as OWASP
# advises. Numbers are written by Python, never from text, so "-4" stays a number.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value):
    """A text cell, defused if a spreadsheet would run it."""
    if value is None:
        return ""
    return "'" + value if value.startswith(FORMULA_START) else value


def number(value):
    """A number as the shortest text that reads back as the same float."""
    return "" if value is None else repr(value)


def csv_chunks(header, rows):
    """The CSV text of `header` then `rows` (iterables of cells), in chunks."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
        if buffer.tell() >= CHUNK_CHARS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            # a month's export formats for minutes: browsers' live views go on meanwhile
            concurrency.pause()
    yield buffer.getvalue()


def file_name(kind, what, start):
    """e.g. octopus-raw-oficina_all-20261122T1200Z.csv: letters, digits, '_', '-' and '.'."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", what.replace("#", "all").replace("+", "any"))
    return f"octopus-{kind}-{slug.strip('_')[:60] or 'all'}-{start:%Y%m%dT%H%MZ}.csv"


def csv_response(chunks, name):
    response = Response(chunks, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


class PooledStream:
    """A response body read over a pooled connection of its own, given back when the server
    closes the response (also if the client goes away mid-file).

    Not get_db()'s connection, nor stream_with_context: Flask gives the request's connection
    back to the pool when the view returns, before a streamed body is sent, and the export's
    server-side cursor would then be cut off after its first batch.
    """

    def __init__(self, pool, conn, rows, chunks):
        self.pool, self.conn, self.rows, self.chunks = pool, conn, rows, chunks

    def __iter__(self):
        yield from self.chunks
        self.close()  # at once when the file is complete, not only when the server closes

    def close(self):
        """Stop reading and give the connection back (once)."""
        if self.conn is not None:
            self.chunks.close()
            self.rows.close()  # ends the cursor's transaction (a cut file: rolled back)
            self.pool.putconn(self.conn)
            self.conn = None


def raw_export(tz):
    """Every stored reading of `pattern` in the range, oldest first."""
    selection = narrow(pattern())
    start, end = time_range(history.EXPORT_RAW_MAX)
    if not history.attributes(get_db(), selection):
        raise ApiError(404, f"no stored attribute matches {quoted(text('pattern', '#'))}: "
                            "/api/v1/attributes lists the topics there are")
    pool = current_app.extensions[POOL]
    conn = pool.getconn()
    try:
        rows = history.export_raw(conn, selection, start, end)
        # Run the query now, so that a failure is an error answer, not a truncated file.
        first = next(rows, None)
    except BaseException:
        pool.putconn(conn)
        raise
    lines = ((iso_in(r["ts"], tz), cell(r["site"]), cell(r["room"]), cell(r["device"]),
              cell(r["attribute"]), cell(r["txt"]) if r["txt"] is not None else number(r["num"]),
              cell(r["unit"])) for r in chain([first] if first is not None else [], rows))
    body = PooledStream(pool, conn, rows, csv_chunks(RAW_COLUMNS, lines))
    return body, file_name("raw", text("pattern", "#"), start)


def aggregate_export(tz):
    """The per-minute aggregates of `devices` and `attribute`, as /aggregates answers them."""
    devices, name, start, end, rows = aggregate_rows()
    lines = ((iso_in(r["minute"], tz), number(r["mean"]), number(r["min"]), number(r["max"]),
              r["n"], cell(r["min_device"]), cell(r["max_device"])) for r in rows)
    return (csv_chunks(AGGREGATE_COLUMNS, lines),
            file_name("aggregate", f"{devices}-{name}", start))


EXPORTS = {"raw": raw_export, "aggregate": aggregate_export}


@bp.get("/export.csv")
def export_csv():
    """A CSV file of raw readings (kind=raw) or per-minute aggregates (kind=aggregate)."""
    kind = text("kind", "raw")
    if kind not in EXPORTS:
        raise ApiError(400, f"'kind' {quoted(kind)}: use raw or aggregate")
    chunks, name = EXPORTS[kind](zone())
    return csv_response(chunks, name)
