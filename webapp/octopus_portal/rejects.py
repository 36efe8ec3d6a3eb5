"""The rejects page: the latest messages the ingest refused, with why, and a safe preview."""
import codecs

from flask import Blueprint, render_template

from .db import get_db

bp = Blueprint("rejects", __name__)

LIMIT = 200
PREVIEW_CHARS = 120  # of a payload that is text
PREVIEW_BYTES = 48   # of a payload that is not, shown as hex
# Enough bytes for PREVIEW_CHARS characters of up to 4 UTF-8 bytes each, plus one.
HEAD_BYTES = PREVIEW_CHARS * 4 + 4

LATEST_SQL = """
SELECT id, received_at, topic, reason, payload_size,
       substring(payload FROM 1 FOR %s) AS head
  FROM rejects
 ORDER BY received_at DESC, id DESC
 LIMIT %s
"""


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
    complete = len(head) >= size
    try:
        # A payload cut short (stored or fetched) may end inside a character: not final then.
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
    except UnicodeDecodeError:
        shown = head[:PREVIEW_BYTES].hex(" ")
        return "hex", shown + (" …" if size > PREVIEW_BYTES else "")
    cut = len(text) > PREVIEW_CHARS or not complete
    return "text", visible(text[:PREVIEW_CHARS]) + ("…" if cut else "")


@bp.get("/rejects")
def index():
    """The latest LIMIT rejects, newest first, and how many there are in all."""
    db = get_db()
    total = db.execute("SELECT count(*) AS n FROM rejects").fetchone()["n"]
    rows = db.execute(LATEST_SQL, (HEAD_BYTES, LIMIT)).fetchall()
    rejects = []
    for row in rows:
        kind, preview = payload_preview(row["head"], row["payload_size"])
        rejects.append({**row, "topic": visible(row["topic"]), "preview_kind": kind,
                        "preview": preview})
    return render_template("rejects.html", rejects=rejects, total=total, limit=LIMIT)
