"""GET /api/v1/rejects: the messages the ingest refused, newest first, a page at a time."""
import base64

from flask import jsonify

from .. import rejects
from ..db import get_db
from . import bp
from .auth import narrow
from .params import iso_utc, page, text


def as_json(row):
    """A reject as the API answers it: the payload kept (its first 4,096 bytes) in base64, and
    as text when those bytes are UTF-8."""
    kept = bytes(row["head"])
    return {"id": row["id"], "received_at": iso_utc(row["received_at"]), "topic": row["topic"],
            "reason": row["reason"], "size": row["payload_size"],
            "payload_base64": base64.b64encode(kept).decode(),
            "payload_text": rejects.decode_head(kept, row["payload_size"]),
            "payload_cut": len(kept) < row["payload_size"]}


@bp.get("/rejects")
def list_rejects():
    """The rejects on topics matching `topic` (default every one), newest first."""
    topic_filter = narrow(rejects.TopicFilter.parse(text("topic", "#")))
    limit, before = page()
    rows, following = rejects.latest(get_db(), topic_filter, before, limit,
                                     head_bytes=rejects.KEPT_BYTES)
    return jsonify(rejects=[as_json(r) for r in rows], next=following)
