"""The rejects page: the messages the ingest refused, newest first, with why and a safe
preview; a topic filter finds one device's, and pages go back through the older ones."""
import codecs
from dataclasses import dataclass

from flask import Blueprint, render_template, request

from .db import first_page, get_db, page_start
from .history import SelectionError, check_wildcards

bp = Blueprint("rejects", __name__)

LIMIT = 200
# Counted up to here, then "more than": the count reads every row it counts, on every view
# of the page: 60-70 ms at 2 million rows (measured), and a device that sends 10 malformed
# messages a second fills the 30 days rejects are kept with 26 million.
COUNT_CAP = 100_000
PREVIEW_CHARS = 120  # of a payload that is text
PREVIEW_BYTES = 48   # of a payload that is not, shown as hex
# Enough bytes for PREVIEW_CHARS characters of up to 4 UTF-8 bytes each, plus one.
HEAD_BYTES = PREVIEW_CHARS * 4 + 4
# The ingest keeps at most this much of a rejected payload (classify.js).
KEPT_BYTES = 4096

# Newest first, through the primary key (ids grow as rejects are stored); `before` is the
# last id of the page before (keyset paging: a page further back costs what the first does).
LATEST_SQL = """
SELECT id, received_at, topic, reason, payload_size,
       substring(payload FROM 1 FOR %(head)s) AS head
  FROM rejects
 WHERE (%(regex)s::text IS NULL OR topic ~ %(regex)s)
   AND (%(before)s::bigint IS NULL OR id < %(before)s)
 ORDER BY id DESC
 LIMIT %(limit)s
"""


@dataclass(frozen=True)
class TopicFilter:
    """An MQTT topic filter over the rejects' topics, whatever their depth: `planta/#`,
    `+/+/sensor1/#`. Levels may be empty, as the topics of some rejects are."""
    levels: tuple

    @classmethod
    def parse(cls, text):
        """`text` as a filter; SelectionError if it is not one."""
        if not text:
            raise SelectionError("the topic filter is empty: e.g. planta/# or +/+/sensor1/#")
        if "\x00" in text:  # no topic holds one (MQTT forbids it, PostgreSQL's text too)
            raise SelectionError("the topic filter contains a NUL character")
        levels = tuple(text.split("/"))
        check_wildcards(levels, f"topic filter {text!r}")
        return cls(levels)

    def regex(self):
        """The filter as an anchored PostgreSQL regular expression; None for `#` (all)."""
        if self.levels == ("#",):
            return None
        parts = []
        for level in self.levels:
            if level == "#":
                return "^" + "/".join(parts) + "(/.*)?$"  # `a/#` also matches `a`, as in MQTT
            parts.append("[^/]*" if level == "+" else literal(level))
        return "^" + "/".join(parts) + "$"


def literal(text):
    """`text` matched as itself in a regular expression: every ASCII character that is not a
    letter or digit escaped (in PostgreSQL's syntax, `\\` before such a character is that
    character; only ASCII ones are ever special)."""
    return "".join("\\" + c if c.isascii() and not c.isalnum() else c for c in text)


def latest(conn, topic_filter=None, before=None, limit=LIMIT, head_bytes=HEAD_BYTES):
    """(up to `limit` rejects newest first, matching `topic_filter` (a TopicFilter or None),
    with ids below `before` if given; the id the next page starts below, or None if none)."""
    return first_page(conn.execute(LATEST_SQL, {
        "head": head_bytes, "regex": topic_filter.regex() if topic_filter else None,
        "before": before, "limit": limit + 1}).fetchall(), limit)


def decode_head(head, size):
    """The text of a payload's first bytes, or None if they are not UTF-8. A payload cut short
    (stored or fetched) may end inside a character: its incomplete end is left out."""
    complete = len(head) >= size
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
    except UnicodeDecodeError:
        return None


def visible(text):
    """`text` with control and other invisible characters written as escapes (\\n, \\x00)."""
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}")
    return "".join(out)


def payload_preview(head, size):
    """("text", preview) if the payload is UTF-8, else ("hex", its first bytes in hex)."""
    head = bytes(head)
    text = decode_head(head, size)
    if text is None:
        shown = head[:PREVIEW_BYTES].hex(" ")
        return "hex", shown + (" …" if size > PREVIEW_BYTES else "")
    cut = len(text) > PREVIEW_CHARS or len(head) < size
    return "text", visible(text[:PREVIEW_CHARS]) + ("…" if cut else "")


@bp.get("/rejects")
def index():
    """The rejects, newest first, LIMIT a page; `topic` filters them, `before` pages back."""
    db = get_db()
    total = db.execute("SELECT count(*) AS n FROM (SELECT FROM rejects LIMIT %s) kept",
                       (COUNT_CAP + 1,)).fetchone()["n"]
    # not stripped: a topic may end in a space, and its link must find it
    topic, before = request.args.get("topic", ""), request.args.get("before", "")
    before = page_start(before)
    rows, older, problem = [], None, None
    try:
        topic_filter = TopicFilter.parse(topic) if topic else None
        rows, older = latest(db, topic_filter, before)
    except SelectionError as exc:
        problem = str(exc)
    rejects = []
    for row in rows:
        kind, preview = payload_preview(row["head"], row["payload_size"])
        rejects.append({**row, "shown_topic": visible(row["topic"]), "preview_kind": kind,
                        "preview": preview})
    page = render_template("rejects.html", rejects=rejects, total=min(total, COUNT_CAP),
                           more=total > COUNT_CAP, limit=LIMIT,
                           topic=topic, before=before, older=older, problem=problem)
    return page, 400 if problem else 200
