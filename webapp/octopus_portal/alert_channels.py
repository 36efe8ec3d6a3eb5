"""Notification channels: where Node-RED sends alerts, per severity (e-mail, webhook, MQTT).
Admins only, reading included: targets are addresses and URLs that may carry tokens."""
import re
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from . import audit
from .alert_rule_checks import NAME_MAX, SEVERITIES
from .alert_rules import set_row_enabled
from .auth import require_admin
from .db import get_db

bp = Blueprint("alert_channels", __name__, url_prefix="/alerts/channels")

KINDS = ("email", "webhook", "mqtt")
TARGET_MAX = 1000
# A sane address, not RFC 5322's every corner: local part of the usual characters, a
# domain of at least two labels of letters, digits and inner hyphens.
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@" + LABEL + r"(?:\." + LABEL + r")+")
# the platform's own topics a notification must not be mistaken for
RESERVED_TOPICS = ("octopus/live", "octopus/alerts/", "octopus/stats/")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
TARGET_HINTS = {
    "email": "one or more addresses, comma-separated, e.g. ops@example.com, "
             "oncall@example.com",
    "webhook": "an http:// or https:// URL, e.g. https://hooks.example.com/octopus",
    "mqtt": "a topic under octopus/, e.g. octopus/notifications/ops",
}


def email_target(text):
    """The addresses normalised ('a@x.org, b@y.org'), or None if one is not an address."""
    addresses = [part.strip() for part in text.split(",")]
    if not all(EMAIL.fullmatch(address) for address in addresses):
        return None
    return ", ".join(addresses)


def target_problem(kind, target):
    """What is wrong with a channel's target for its kind, or None."""
    if not target or len(target) > TARGET_MAX or CONTROL.search(target):
        return f"1 to {TARGET_MAX} characters, no control characters: {TARGET_HINTS[kind]}."
    if kind == "email" and email_target(target) is None:
        return "each address like name@example.com, separated by commas."
    if kind == "webhook":
        try:
            parts = urlsplit(target)
            parts.port  # a port that is not a number raises here
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname \
                or " " in target:
            return "an http:// or https:// URL with a host, e.g. https://hooks.example.com/x."
    if kind == "mqtt":
        if "+" in target or "#" in target:
            return "a topic, not a filter: no '+' or '#'."
        if not target.startswith("octopus/") or "" in target.split("/"):
            return ("a topic under octopus/ without empty levels, e.g. "
                    "octopus/notifications/ops (other topics are device topics: the ingest "
                    "would take a notification for a reading or a reject).")
        if target.startswith(RESERVED_TOPICS):
            return "not octopus/live, octopus/alerts/... or octopus/stats/...: the " \
                   "platform's own."
    return None


def check_channel(form):
    """The row to store from the form's values, and what is wrong ({field: message})."""
    problems = {}
    row = {"name": form["name"], "kind": form["kind"], "target": form["target"],
           "severities": [s for s in SEVERITIES if s in form["severities"]],
           "enabled": form["enabled"]}
    if not row["name"] or len(row["name"]) > NAME_MAX or not row["name"].isprintable():
        problems["name"] = f"1 to {NAME_MAX} printable characters."
    if row["kind"] not in KINDS:
        problems["kind"] = "one of " + ", ".join(KINDS) + "."
    else:
        problems["target"] = target_problem(row["kind"], row["target"])
        if row["kind"] == "email" and not problems["target"]:
            row["target"] = email_target(row["target"])
    if not row["severities"] or set(form["severities"]) - set(SEVERITIES):
        problems["severities"] = "tick at least one of " + ", ".join(SEVERITIES) + "."
    return row, {field: text for field, text in problems.items() if text}


def form_values(channel=None):
    """The form's fields: from the request, else from a stored channel, else defaults."""
    if request.method == "POST":
        return {"name": request.form.get("name", "").strip(),
                "kind": request.form.get("kind", ""),
                "target": request.form.get("target", "").strip(),
                "severities": request.form.getlist("severities"),
                "enabled": request.form.get("enabled") == "on"}
    if channel:
        return {key: channel[key] for key in ("name", "kind", "target", "severities",
                                              "enabled")}
    return {"name": "", "kind": "email", "target": "", "severities": ["warning", "critical"],
            "enabled": True}


def audited(row):
    """A channel's fields for the audit log: not its target, which may carry a token and
    would outlive a change of it there."""
    return {field: value for field, value in row.items() if field != "target"}


def render_channels(status=200, **context):
    """The channels and the form to add one or change one."""
    channels = get_db().execute("SELECT * FROM notification_channels ORDER BY name, id"
                                ).fetchall()
    context.setdefault("form", form_values())
    return render_template("alerts_channels.html", channels=channels, kinds=KINDS,
                           severities=SEVERITIES, hints=TARGET_HINTS,
                           errors=context.pop("errors", {}), **context), status


bp.before_request(require_admin)  # targets may carry tokens: admins only, reading too


@bp.route("", methods=("GET", "POST"))
def index():
    """The channels, and adding one."""
    if request.method == "GET":
        return render_channels()
    form = form_values()
    row, problems = check_channel(form)
    if problems:
        return render_channels(400, form=form, errors=problems)
    db = get_db()
    with db.transaction():
        channel_id = db.execute(
            "INSERT INTO notification_channels (name, kind, target, severities, enabled)"
            " VALUES (%(name)s, %(kind)s, %(target)s, %(severities)s, %(enabled)s)"
            " RETURNING id", row).fetchone()["id"]
        audit.record("channel.created", row["name"], id=channel_id, **audited(row))
    flash(f"Channel “{row['name']}” added.", "info")
    return redirect(url_for("alert_channels.index"))


def stored_channel(channel_id):
    channel = get_db().execute("SELECT * FROM notification_channels WHERE id = %s",
                               (channel_id,)).fetchone()
    if channel is None:
        abort(404)
    return channel


@bp.route("/<int:channel_id>", methods=("GET", "POST"))
def edit(channel_id):
    """Change a channel."""
    channel = stored_channel(channel_id)
    form = form_values(channel)
    if request.method == "GET":
        return render_channels(form=form, editing=channel)
    row, problems = check_channel(form)
    if problems:
        return render_channels(400, form=form, errors=problems, editing=channel)
    db = get_db()
    with db.transaction():
        db.execute("UPDATE notification_channels SET name = %(name)s, kind = %(kind)s,"
                   " target = %(target)s, severities = %(severities)s,"
                   " enabled = %(enabled)s, updated_at = now() WHERE id = %(id)s",
                   {**row, "id": channel_id})
        audit.record("channel.changed", row["name"], id=channel_id,
                     changes=audit.changes(audited(channel), audited(row)),
                     target_changed=row["target"] != channel["target"])
    flash(f"Channel “{row['name']}” saved.", "info")
    return redirect(url_for("alert_channels.index"))


@bp.post("/<int:channel_id>/enabled")
def set_enabled(channel_id):
    """Enable (enabled=on) or disable a channel."""
    set_row_enabled("notification_channels", channel_id, "channel.changed")
    return redirect(url_for("alert_channels.index"))


@bp.post("/<int:channel_id>/delete")
def delete(channel_id):
    """Delete a channel: nothing more is sent to it."""
    db = get_db()
    with db.transaction():
        channel = db.execute("DELETE FROM notification_channels WHERE id = %s RETURNING name",
                             (channel_id,)).fetchone()
        if channel is not None:
            audit.record("channel.deleted", channel["name"], id=channel_id)
    return redirect(url_for("alert_channels.index"))
