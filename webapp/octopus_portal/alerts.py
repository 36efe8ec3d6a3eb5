"""Alerts: the list that needs attention, each alert's history, and acknowledgements.

Node-RED's octopus-alerts node raises and clears alerts (rows + events) and publishes each
one's state, retained, on octopus/alerts/<rule_id>/<site>/<room>/<device>/<attribute>;
the portal shows them, live through live.py, and records who acknowledged what.
"""
from flask import (Blueprint, abort, current_app, flash, g, jsonify, redirect,
                   render_template, request, url_for)
from flask_login import current_user

from . import live
from .auth import safe_next
from .db import get_db
from .devices import iso

bp = Blueprint("alerts", __name__)

ACK_ROLES = ("admin", "operator")  # viewers look, they do not acknowledge
ATTENTION_LIMIT = 500  # shown at once; the count still covers them all
CLOSED_LIMIT = 100
PUBLISH_TIMEOUT = 5.0  # s for the broker to confirm an acknowledged state

NEEDS_ATTENTION = "cleared_at IS NULL OR acked_at IS NULL"  # alerts_needing_attention's WHERE
ATTENTION_SQL = f"""SELECT * FROM alerts WHERE {NEEDS_ATTENTION}
 ORDER BY raised_at DESC, id DESC LIMIT %s"""
# the latest raised of the closed ones: alerts_raised_at serves it without a sort
CLOSED_SQL = """SELECT * FROM alerts WHERE cleared_at IS NOT NULL AND acked_at IS NOT NULL
 ORDER BY raised_at DESC, id DESC LIMIT %s"""
COUNT_SQL = f"SELECT count(*) AS n FROM alerts WHERE {NEEDS_ATTENTION}"
ACK_SQL = """UPDATE alerts SET acked_at = now(), acked_by = %s
 WHERE id = %s AND acked_at IS NULL RETURNING *"""
# Whether an alert is the newest of its topic: only that one's state may be retained there
# (acknowledging an older alert must not replace the state of a newer, maybe active one).
NEWEST_SQL = """SELECT NOT EXISTS (SELECT 1 FROM alerts b WHERE b.rule_id = a.rule_id
   AND (b.site, b.room, b.device, b.attribute) = (a.site, a.room, a.device, a.attribute)
   AND b.id > a.id) AS newest FROM alerts a WHERE a.id = %s"""
EVENTS_SQL = """SELECT at, kind, value, actor, detail FROM alert_events
 WHERE alert_id = %s ORDER BY at, id"""


def state_of(row):
    """active (not acknowledged, not cleared), acknowledged (not cleared), or cleared."""
    if row["cleared_at"] is not None:
        return "cleared"
    return "acknowledged" if row["acked_at"] is not None else "active"


def alert_state(row):
    """An alerts row as the JSON published on octopus/alerts/... (times in ISO 8601 UTC)."""
    state = {key: row[key] for key in live.ALERT_FIELDS if key != "state"}
    for key in ("raised_at", "acked_at", "cleared_at"):
        state[key] = iso(row[key])
    state["state"] = state_of(row)
    return state


def may_acknowledge():
    """Whether the logged-in user may acknowledge alerts."""
    return getattr(current_user, "role", None) in ACK_ROLES


@bp.app_context_processor
def nav_badge():
    """The nav's Alerts badge on every page: a function, so that only a page that shows the
    badge (a logged-in user's) runs the count."""
    return {"alerts_needing_attention": needing_attention}


def needing_attention():
    """How many alerts need attention (open, or cleared and not acknowledged); once a request."""
    if "alerts_needing_attention" not in g:
        g.alerts_needing_attention = get_db().execute(COUNT_SQL).fetchone()["n"]
    return g.alerts_needing_attention


def lists():
    """(alerts needing attention, recently closed alerts), newest first, as alert states."""
    db = get_db()
    return ([alert_state(r) for r in db.execute(ATTENTION_SQL, (ATTENTION_LIMIT,))],
            [alert_state(r) for r in db.execute(CLOSED_SQL, (CLOSED_LIMIT,))])


@bp.get("/alerts")
def index():
    """The alerts that need attention and the recently closed ones, kept current live."""
    attention, closed = lists()
    return render_template("alerts.html", attention=attention, closed=closed,
                           total=needing_attention(), may_ack=may_acknowledge(),
                           limit=ATTENTION_LIMIT, closed_limit=CLOSED_LIMIT)


@bp.get("/alerts/snapshot.json")
def snapshot():
    """Both lists as JSON: the page redraws from it after a lost connection."""
    attention, closed = lists()
    return jsonify(needs_attention=needing_attention(), attention=attention, closed=closed)


@bp.get("/alerts/count.json")
def count():
    """How many alerts need attention: the nav badge on every page."""
    return jsonify(needs_attention=needing_attention())


def stored_alert(alert_id):
    row = get_db().execute("SELECT * FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    if row is None:
        abort(404)
    return row


@bp.get("/alerts/<int:alert_id>")
def detail(alert_id):
    """One alert and its history: raised, notified, acknowledged, cleared..., in order."""
    alert = alert_state(stored_alert(alert_id))
    events = get_db().execute(EVENTS_SQL, (alert_id,)).fetchall()
    return render_template("alerts_detail.html", alert=alert, events=events,
                           may_ack=may_acknowledge())


@bp.post("/alerts/<int:alert_id>/ack")
def acknowledge(alert_id):
    """Acknowledge an alert (once: a second time changes nothing), then publish its state."""
    if not may_acknowledge():
        abort(403)
    row = record_acknowledgement(alert_id, current_user.username)
    if row is None:
        before = stored_alert(alert_id)
        flash(f"Alert {alert_id} was already acknowledged by {before['acked_by']}.", "info")
    else:
        flash(f"Alert {alert_id} acknowledged.", "info")
        problem = publish_state(row)
        if problem:
            flash(f"Other pages will show it after a reload: {problem}.", "warning")
    target = request.form.get("next")
    return redirect(safe_next(target) if target else url_for("alerts.index"))


def record_acknowledgement(alert_id, actor):
    """Acknowledge an alert as `actor`, with its event; the updated row, or None if it was
    acknowledged already (or does not exist)."""
    db = get_db()
    with db.transaction():
        row = db.execute(ACK_SQL, (actor, alert_id)).fetchone()
        if row is not None:
            db.execute("INSERT INTO alert_events (alert_id, kind, actor)"
                       " VALUES (%s, 'acknowledged', %s)", (alert_id, actor))
    return row


def publish_state(row):
    """Publish an alert's new state; None, or what went wrong (logged: the acknowledgement
    stands, and pages show it after a reload)."""
    state = alert_state(row)
    newest = row["rule_id"] is not None and get_db().execute(
        NEWEST_SQL, (row["id"],)).fetchone()["newest"]
    try:
        live.publish_alerts(PUBLISH_TIMEOUT, retained=[state] if newest else [],
                            passing=[] if newest else [state])
    except live.PublishError as exc:
        current_app.logger.warning("alert %s acknowledged, its state not published: %s",
                                   row["id"], exc)
        return str(exc)
    return None
