"""The alerts: GET /api/v1/alerts (a page at a time), GET /api/v1/alerts/<id> with its
history, POST /api/v1/alerts/<id>/ack. The rows and states are alerts.py's, as the portal
shows them; Node-RED raises and clears them (doc/alerts.md)."""
from flask import g, jsonify

from .. import alerts
from ..db import first_page, get_db
from . import bp
from .auth import check_site, narrow
from .errors import ApiError, quoted
from .params import iso_utc, page, pattern, text

STATES = {  # the `state` parameter: which alerts
    "attention": alerts.NEEDS_ATTENTION,  # what the portal's list shows
    "open": "cleared_at IS NULL",
    "all": "true",
}
LIST_SQL = """SELECT * FROM alerts
 WHERE ({state}) AND {where} AND (%s::bigint IS NULL OR id < %s)
 ORDER BY id DESC LIMIT %s"""


def visible_alert(alert_id):
    """The alerts row `alert_id`; ApiError 404 if there is none, 403 if another site's."""
    row = get_db().execute("SELECT * FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    if row is None:
        raise ApiError(404, f"no alert {alert_id}: /api/v1/alerts lists them")
    check_site(row["site"])
    return row


@bp.get("/alerts")
def list_alerts():
    """Alerts newest first: those needing attention by default, or open ones, or all."""
    state = text("state", "attention")
    if state not in STATES:
        raise ApiError(400, f"'state' {quoted(state)} must be one of {', '.join(STATES)}")
    where, params = narrow(pattern()).where(("site", "room", "device", "attribute"))
    limit, before = page()
    rows, following = first_page(get_db().execute(
        LIST_SQL.format(state=STATES[state], where=where),
        [*params, before, before, limit + 1]).fetchall(), limit)
    return jsonify(alerts=[alerts.alert_state(r) for r in rows], next=following)


@bp.get("/alerts/<int:alert_id>")
def one_alert(alert_id):
    """One alert and its history (raised, notified, acknowledged, cleared...), oldest first."""
    row = visible_alert(alert_id)
    events = get_db().execute(alerts.EVENTS_SQL, (alert_id,)).fetchall()
    return jsonify(alert=alerts.alert_state(row),
                   events=[{**e, "at": iso_utc(e["at"])} for e in events])


@bp.post("/alerts/<int:alert_id>/ack")
def acknowledge(alert_id):
    """Acknowledge an alert (scope write) as this key or user; once: again changes nothing."""
    visible_alert(alert_id)
    caller = g.api_caller
    actor = f"API key {caller.name}" if caller.kind == "key" else caller.name
    row = alerts.record_acknowledgement(alert_id, actor)
    if row is None:
        return jsonify(alert=alerts.alert_state(visible_alert(alert_id)), changed=False,
                       published=None)
    problem = alerts.publish_state(row)
    return jsonify(alert=alerts.alert_state(row), changed=True, published=problem is None)
