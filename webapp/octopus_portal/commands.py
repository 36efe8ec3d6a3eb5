"""Device commands: an operator or admin sends a value to <site>/<room>/<device>/<attribute>/set
from the portal; each one is recorded in the audit log (who, when, what, whether the broker
took it), and the device's page lists the recent ones."""
from flask import Blueprint, abort, current_app, render_template, request
from flask_login import current_user

from . import audit, live
from .db import get_db
from .topics import is_level

bp = Blueprint("commands", __name__)
COMMAND_ROLES = ("admin", "operator")  # viewers read; they do not act on devices
MAX_PAYLOAD_CHARS = 1024
ACTION = "device.command"

RECENT_SQL = """
SELECT at, actor, detail FROM audit_log
 WHERE action = %s AND subject = %s
 ORDER BY at DESC, id DESC LIMIT 20"""


def may_send_commands():
    """Whether the logged-in user may send commands to devices."""
    return getattr(current_user, "role", None) in COMMAND_ROLES


@bp.app_context_processor
def command_rights():
    return {"may_send_commands": may_send_commands}


def known_attributes(site, room, device):
    """The device's attributes, or None if the registry does not know the device."""
    rows = get_db().execute(
        "SELECT a.name FROM devices d LEFT JOIN attributes a ON a.device_id = d.id"
        " WHERE d.site = %s AND d.room = %s AND d.name = %s ORDER BY a.name",
        (site, room, device)).fetchall()
    return [r["name"] for r in rows if r["name"] is not None] if rows else None


def check_command(attribute, value):
    """What is wrong with a command, as a list of messages (empty: fine)."""
    errors = []
    if not is_level(attribute):
        errors.append("Attribute: one topic level, e.g. setpoint (no '/', '+' or '#').")
    if len(value) > MAX_PAYLOAD_CHARS or not value.isprintable():
        errors.append(f"Value: at most {MAX_PAYLOAD_CHARS} printable characters, e.g. 21.5, "
                      "on, or JSON.")
    return errors


def render_page(site, room, device, attributes, status=200, **context):
    """The device's command page: the form (for operators and admins) and recent commands."""
    subject = f"{site}/{room}/{device}"
    recent = get_db().execute(RECENT_SQL, (ACTION, subject)).fetchall()
    context.setdefault("form", {"attribute": "", "value": ""})
    return render_template("commands.html", site=site, room=room, device=device,
                           subject=subject, attributes=attributes, recent=recent,
                           **context), status


@bp.get("/devices/<site>/<room>/<device>/commands")
def page(site, room, device):
    """The commands sent to one device, and the form to send one."""
    attributes = known_attributes(site, room, device)
    if attributes is None:
        abort(404)
    return render_page(site, room, device, attributes)


@bp.post("/devices/<site>/<room>/<device>/commands")
def send(site, room, device):
    """Publish a command (QoS 1) and record it, delivered to the broker or not."""
    if not may_send_commands():
        abort(403)
    attributes = known_attributes(site, room, device)
    if attributes is None:
        abort(404)
    form = {"attribute": request.form.get("attribute", "").strip(),
            "value": request.form.get("value", "")}
    errors = check_command(**form)
    if errors:
        return render_page(site, room, device, attributes, 400, form=form, errors=errors)
    topic = f"{site}/{room}/{device}/{form['attribute']}/set"
    problem = live.deliver(topic, form["value"], timeout=5)
    delivered = problem is None
    audit.record(ACTION, f"{site}/{room}/{device}", topic=topic, payload=form["value"],
                 delivered=delivered)
    if not delivered:
        current_app.logger.warning("command to %s not delivered: %s", topic, problem)
        return render_page(site, room, device, attributes, 502, form=form,
                           errors=[f"Not sent: {problem}."])
    return render_page(site, room, device, attributes, sent=topic)
