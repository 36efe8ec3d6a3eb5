"""Modbus devices: everyone sees them with their polling health on /modbus; admins add,
change and remove them. Node-RED's octopus-modbus node picks changes up within seconds."""
import json
from pathlib import Path

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from psycopg import errors

from . import audit
from .auth import require_admin
from .db import get_db
from .devices import display_value
from .topics import is_level

bp = Blueprint("modbus", __name__)

HOST_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:_-")
INTERVAL_S = (0.1, 86400)  # the bounds modbus_devices.poll_interval_ms holds, in seconds
FIELDS = ("site", "room", "name", "host", "port", "unit_id", "profile", "interval_s")

LIST_SQL = """
SELECT d.id, d.site, d.room, d.name, d.host, d.port, d.unit_id, d.profile,
       d.poll_interval_ms, d.enabled, d.updated_at,
       s.status, s.polls, s.ok, s.timeouts, s.exceptions, s.connection_errors, s.garbage,
       s.overflows, s.last_ok_at, s.last_error, s.last_error_at, s.late_ms_max, s.since,
       s.updated_at AS stats_at
  FROM modbus_devices d LEFT JOIN modbus_poll_stats s ON s.device_id = d.id
 ORDER BY d.site, d.room, d.name"""


def profiles():
    """Every profile in MODBUS_PROFILES_DIR: name → {title, attributes}, or {error}."""
    found = {}
    for path in sorted(Path(current_app.config["MODBUS_PROFILES_DIR"]).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            found[path.stem] = {"title": data.get("title", path.stem),
                                "attributes": [a["name"] for a in data["attributes"]]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            found[path.stem] = {"error": f"{path.name} cannot be read: {exc}"}
    return found


def check_device(form, known_profiles):
    """The row to store from the form's values, and what is wrong with them (messages)."""
    problems = []
    for field in ("site", "room", "name"):
        if not is_level(form[field]) or form[field] == "octopus":
            problems.append(f"{field.capitalize()}: one topic level (no '/', '+', '#', at most "
                            "128 characters; not 'octopus').")
    host = form["host"]
    if not host or len(host) > 253 or not set(host) <= HOST_CHARS:
        problems.append("Host: a host name or IP address, e.g. 192.168.1.20.")
    row = {"site": form["site"], "room": form["room"], "name": form["name"], "host": host,
           "profile": form["profile"]}
    for field, label, low, high in (("port", "Port", 1, 65535), ("unit_id", "Unit id", 0, 255)):
        try:
            row[field] = int(form[field])
            if not low <= row[field] <= high:
                raise ValueError
        except ValueError:
            problems.append(f"{label}: a whole number from {low} to {high}.")
    try:
        seconds = float(form["interval_s"])
        if not INTERVAL_S[0] <= seconds <= INTERVAL_S[1]:
            raise ValueError
        row["poll_interval_ms"] = round(seconds * 1000)
    except ValueError:
        problems.append(f"Poll interval: seconds from {INTERVAL_S[0]} to {INTERVAL_S[1]}.")
    profile = known_profiles.get(form["profile"])
    if profile is None or "error" in profile:
        problems.append("Profile: one of " + ", ".join(
            name for name, p in known_profiles.items() if "error" not in p) + ".")
    row["enabled"] = form.get("enabled", True)
    return row, problems


def form_values(device=None):
    """The form's fields: from the request, else from a stored device, else defaults."""
    if request.method == "POST":
        values = {field: request.form.get(field, "").strip() for field in FIELDS}
        values["enabled"] = request.form.get("enabled") == "on"
        return values
    if device:
        return {**{f: device[f] for f in FIELDS if f in device},
                "interval_s": f"{device['poll_interval_ms'] / 1000:g}",
                "enabled": device["enabled"]}
    return {"site": "", "room": "", "name": "", "host": "", "port": "502", "unit_id": "1",
            "profile": "osm27", "interval_s": "1", "enabled": True}


def render_page(status=200, **context):
    """The device list, and (for admins) the form to add or change one."""
    devices = get_db().execute(LIST_SQL).fetchall()
    context.setdefault("form", form_values())
    known = profiles()
    views = {name for name, p in known.items() if has_recloser_view(p)}
    return render_template("modbus.html", devices=devices, profiles=known,
                           recloser_profiles=views, **context), status


def save(row, device=None):
    """Insert `row`, or update the stored `device` with it, and audit it; a message if
    another device has the same site/room/name."""
    db = get_db()
    subject = f"{row['site']}/{row['room']}/{row['name']}"
    try:
        with db.transaction():  # the change and its audit row commit together
            if device is None:
                db.execute("INSERT INTO modbus_devices (site, room, name, host, port, unit_id,"
                           " profile, poll_interval_ms, enabled) VALUES (%(site)s, %(room)s,"
                           " %(name)s, %(host)s, %(port)s, %(unit_id)s, %(profile)s,"
                           " %(poll_interval_ms)s, %(enabled)s)", row)
                audit.record("modbus_device.added", subject, **row)
            else:
                db.execute("UPDATE modbus_devices SET site = %(site)s, room = %(room)s,"
                           " name = %(name)s, host = %(host)s, port = %(port)s,"
                           " unit_id = %(unit_id)s, profile = %(profile)s,"
                           " poll_interval_ms = %(poll_interval_ms)s, enabled = %(enabled)s,"
                           " updated_at = now() WHERE id = %(id)s", {**row, "id": device["id"]})
                audit.record("modbus_device.changed", subject, id=device["id"],
                             changes=audit.changes(device, row))
    except errors.UniqueViolation:
        return [f"A Modbus device {subject} already exists."]
    return []


@bp.get("/modbus")
def index():
    """Modbus devices with their polling health."""
    return render_page()


@bp.post("/modbus")
def create():
    """Add a device: polled from the next refresh of the device list (a few seconds)."""
    require_admin()
    form = form_values()
    row, problems = check_device(form, profiles())
    problems = problems or save(row)
    if problems:
        return render_page(400, form=form, errors=problems)
    return redirect(url_for("modbus.index"))


def stored_device(device_id):
    device = get_db().execute("SELECT * FROM modbus_devices WHERE id = %s",
                              (device_id,)).fetchone()
    if device is None:
        abort(404)
    return device


@bp.route("/modbus/<int:device_id>", methods=("GET", "POST"))
def edit(device_id):
    """Change a device (or enable / disable it); its poller restarts with the new settings."""
    require_admin()
    device = stored_device(device_id)
    form = form_values(device)
    if request.method == "GET":
        return render_page(form=form, editing=device)
    row, problems = check_device(form, profiles())
    problems = problems or save(row, device)
    if problems:
        return render_page(400, form=form, editing=device, errors=problems)
    return redirect(url_for("modbus.index"))


# The attributes the recloser view lays out; any profile that has them gets the view.
RECLOSER_ATTRIBUTES = {"ia", "ib", "ic", "va", "vb", "vc", "p_act", "p_react", "fp", "estado"}
LAST_VALUES_SQL = """
SELECT a.name, a.unit, a.last_ts, a.last_num, a.last_txt, d.status
  FROM devices d JOIN attributes a ON a.device_id = d.id
 WHERE (d.site, d.room, d.name) = (%s, %s, %s)"""


def has_recloser_view(profile):
    """Whether a profile's attributes are those the recloser view shows."""
    return RECLOSER_ATTRIBUTES <= set(profile.get("attributes", ()))


@bp.get("/modbus/<int:device_id>/recloser")
def recloser(device_id):
    """A recloser at a glance: the three phases side by side, P, Q, PF and its state, live."""
    device = stored_device(device_id)
    if not has_recloser_view(profiles().get(device["profile"], {})):
        abort(404)
    rows = get_db().execute(LAST_VALUES_SQL, (device["site"], device["room"],
                                              device["name"])).fetchall()
    values = {r["name"]: {"value": display_value(r["last_num"], r["last_txt"]),
                          "unit": r["unit"] or "", "ts": r["last_ts"]} for r in rows}
    status = rows[0]["status"] if rows else None
    return render_template("recloser.html", device=device, values=values,
                           status=status or "unknown",
                           key=f"{device['site']}/{device['room']}/{device['name']}")


@bp.post("/modbus/<int:device_id>/delete")
def delete(device_id):
    """Stop polling a device and forget it (its stored readings stay)."""
    require_admin()
    db = get_db()
    with db.transaction():
        device = db.execute("DELETE FROM modbus_devices WHERE id = %s"
                            " RETURNING site, room, name", (device_id,)).fetchone()
        if device is not None:
            audit.record("modbus_device.deleted",
                         f"{device['site']}/{device['room']}/{device['name']}", id=device_id)
    return redirect(url_for("modbus.index"))
