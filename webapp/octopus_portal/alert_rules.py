"""Alert rules: everyone logged in sees them on /alerts/rules; admins add, change, enable,
disable and delete them. Node-RED's octopus-alerts node re-reads the enabled rules every
few seconds (ALERTS_REFRESH_S), without a redeploy."""
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from psycopg import sql

from . import audit, live
from .alert_rule_checks import (CONDITIONS, DEFAULT_MESSAGES, FIELDS, KIND_FIELDS, KINDS,
                                PLACEHOLDERS, SEVERITIES, check_rule, describe, shown,
                                timing)
from .alerts import PUBLISH_TIMEOUT, alert_state
from .auth import require_admin
from .db import get_db

bp = Blueprint("alert_rules", __name__, url_prefix="/alerts/rules")


def posted_form(kind):
    """A kind's form fields as the request sent them."""
    values = {field: request.form.get(field, "").strip() for field in FIELDS}
    values["message"] = request.form.get("message", "")  # spaces may be meant
    values["enabled"] = request.form.get("enabled") == "on"
    return {**values, "kind": kind}


def form_values(kind, rule=None):
    """A kind's form fields: from a stored rule, else defaults."""
    if rule:
        values = {field: rule[field] if isinstance(rule[field], str) else shown(rule[field])
                  for field in FIELDS}
        values["enabled"] = rule["enabled"]
    else:
        values = {field: "" for field in FIELDS}
        values.update(devices="#", attribute="" if kind == "threshold" else "+",
                      condition="above", hysteresis="0", on_delay_s="0", off_delay_s="0",
                      stale_after_s="600", severity="warning", message=DEFAULT_MESSAGES[kind],
                      enabled=True)
    return {**values, "kind": kind}


def render_rules(status=200, posted=None, errors=None, editing=None):
    """The rules, and for admins a form per kind (or the form of the rule being changed);
    `posted`: a form sent back with its `errors`."""
    rules = get_db().execute("SELECT * FROM alert_rules ORDER BY name, id").fetchall()
    kinds = (editing["kind"],) if editing else KINDS
    forms = {kind: form_values(kind, editing) for kind in kinds}
    if posted:
        forms[posted["kind"]] = posted
    return render_template("alerts_rules.html", rules=rules, forms=forms, errors=errors or {},
                           posted_kind=posted and posted["kind"], editing=editing,
                           describe=describe, timing=timing, conditions=CONDITIONS,
                           severities=SEVERITIES, placeholders=PLACEHOLDERS,
                           kind_fields=KIND_FIELDS), status


@bp.before_request
def admins_change_rules():
    """Everyone logged in may read the list; every other page and every change is admins'."""
    if request.endpoint != "alert_rules.index" or request.method != "GET":
        require_admin()


@bp.route("", methods=("GET", "POST"))
def index():
    """The rules (everyone) and adding one (admins; the form says which kind)."""
    if request.method == "GET":
        return render_rules()
    kind = request.form.get("kind", "")
    if kind not in KINDS:
        abort(400)
    form = posted_form(kind)
    row, problems = check_rule(kind, form)
    if problems:
        return render_rules(400, posted=form, errors=problems)
    db = get_db()
    with db.transaction():
        rule_id = db.execute(
            "INSERT INTO alert_rules (name, kind, devices, attribute, condition, low,"
            " high, hysteresis, on_delay_s, off_delay_s, stale_after_s, severity,"
            " message, enabled) VALUES (%(name)s, %(kind)s, %(devices)s,"
            " %(attribute)s, %(condition)s, %(low)s, %(high)s, %(hysteresis)s,"
            " %(on_delay_s)s, %(off_delay_s)s, %(stale_after_s)s, %(severity)s,"
            " %(message)s, %(enabled)s) RETURNING id", row).fetchone()["id"]
        audit.record("rule.created", row["name"], id=rule_id, **row)
    flash(f"Rule “{row['name']}” added.", "info")
    return redirect(url_for("alert_rules.index"))


def stored_rule(rule_id):
    rule = get_db().execute("SELECT * FROM alert_rules WHERE id = %s", (rule_id,)).fetchone()
    if rule is None:
        abort(404)
    return rule


@bp.route("/<int:rule_id>", methods=("GET", "POST"))
def edit(rule_id):
    """Change a rule (its kind stays: another kind is another rule)."""
    rule = stored_rule(rule_id)
    if request.method == "GET":
        return render_rules(editing=rule)
    form = posted_form(rule["kind"])
    row, problems = check_rule(rule["kind"], form)
    if problems:
        return render_rules(400, posted=form, errors=problems, editing=rule)
    db = get_db()
    with db.transaction():
        db.execute("UPDATE alert_rules SET name = %(name)s, devices = %(devices)s,"
                   " attribute = %(attribute)s, condition = %(condition)s, low = %(low)s,"
                   " high = %(high)s, hysteresis = %(hysteresis)s,"
                   " on_delay_s = %(on_delay_s)s, off_delay_s = %(off_delay_s)s,"
                   " stale_after_s = %(stale_after_s)s, severity = %(severity)s,"
                   " message = %(message)s, enabled = %(enabled)s, updated_at = now()"
                   " WHERE id = %(id)s", {**row, "id": rule_id})
        audit.record("rule.changed", row["name"], id=rule_id, changes=audit.changes(rule, row))
    flash(f"Rule “{row['name']}” saved.", "info")
    return redirect(url_for("alert_rules.index"))


def set_row_enabled(table, row_id, action):
    """Enable (form field enabled=on) or disable a rule or channel: `table` is alert_rules or
    notification_channels, `action` its audit action; 404 if there is no such row."""
    enabled = request.form.get("enabled") == "on"
    db = get_db()
    with db.transaction():
        row = db.execute(sql.SQL("UPDATE {} SET enabled = %s, updated_at = now() WHERE id = %s"
                                 " RETURNING name").format(sql.Identifier(table)),
                         (enabled, row_id)).fetchone()
        if row is None:
            abort(404)
        audit.record(action, row["name"], id=row_id, enabled=enabled)


@bp.post("/<int:rule_id>/enabled")
def set_enabled(rule_id):
    """Enable (enabled=on) or disable a rule."""
    set_row_enabled("alert_rules", rule_id, "rule.changed")
    return redirect(url_for("alert_rules.index"))


@bp.post("/<int:rule_id>/delete")
def delete(rule_id):
    """Delete a rule. Its open alerts are cleared (nothing would ever clear them now) and
    stay listed until acknowledged; the retained states on its topics are removed."""
    db, user = get_db(), current_user.username
    with db.transaction():
        rule = db.execute("SELECT name FROM alert_rules WHERE id = %s FOR UPDATE",
                          (rule_id,)).fetchone()
        if rule is None:
            abort(404)
        closed = [r["id"] for r in db.execute(
            "UPDATE alerts SET cleared_at = now() WHERE rule_id = %s AND cleared_at IS NULL"
            " RETURNING id", (rule_id,))]
        db.execute("INSERT INTO alert_events (alert_id, kind, actor, detail)"
                   " SELECT unnest(%s::bigint[]), 'cleared', %s, %s",
                   (closed, user, f"rule “{rule['name']}” deleted"))
        topics = [live.alert_topic({**r, "rule_id": rule_id}) for r in db.execute(
            "SELECT DISTINCT site, room, device, attribute FROM alerts WHERE rule_id = %s",
            (rule_id,))]
        db.execute("DELETE FROM alert_rules WHERE id = %s", (rule_id,))
        audit.record("rule.deleted", rule["name"], id=rule_id, alerts_cleared=len(closed))
        states = [alert_state(r) for r in db.execute("SELECT * FROM alerts WHERE id = ANY(%s)",
                                                     (closed,))]
    flash(f"Rule “{rule['name']}” deleted" + (f"; {len(closed)} open alert(s) cleared."
                                                if closed else "."), "info")
    if topics:
        try:
            live.publish_alerts(PUBLISH_TIMEOUT, passing=states, removed=topics)
        except live.PublishError as exc:
            flash(f"Its alerts' states on MQTT were not updated: {exc}.", "warning")
    return redirect(url_for("alert_rules.index"))
