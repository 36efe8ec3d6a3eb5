"""The home page: the device tree (site → room → device → attributes) with last values."""
from datetime import timezone
from itertools import groupby

from flask import Blueprint, jsonify, render_template
from markupsafe import Markup

from .db import get_db

bp = Blueprint("devices", __name__)

# One row per attribute, or one per device that has none yet (it only sent its status);
# %(site)s narrows it to one site (an API key's), NULL is every site.
TREE_SQL = """
SELECT d.site, d.room, d.name AS device, d.status, d.status_at, d.first_seen, d.last_seen,
       a.name AS attribute, a.unit, a.last_ts, a.last_num, a.last_txt
  FROM devices d LEFT JOIN attributes a ON a.device_id = d.id
 WHERE %(site)s::text IS NULL OR d.site = %(site)s
 ORDER BY d.site, d.room, d.name, a.name
"""


def tree_rows(site=None):
    """TREE_SQL's rows, in tree order: every site's, or only `site`'s."""
    return get_db().execute(TREE_SQL, {"site": site}).fetchall()


def display_value(num, txt):
    """The text shown for a last value: the state string if there is one, else the number."""
    if txt is not None:
        return txt
    if num is None:
        return ""
    # up to 15 significant digits and no trailing zeros: 23.5, 1000, 0.3 (like JS String())
    return f"{num:.15g}"


def json_value(num, txt):
    """A stored value as JSON, as octopus/live carries it: the string if there is one, else
    the number."""
    return txt if txt is not None else num


def device_tree(rows):
    """Nest the flat TREE_SQL rows into sites → rooms → devices → attributes."""
    sites = []
    for site, site_rows in groupby(rows, key=lambda r: r["site"]):
        rooms = []
        for room, room_rows in groupby(site_rows, key=lambda r: r["room"]):
            devices = []
            for device, device_rows in groupby(room_rows, key=lambda r: r["device"]):
                device_rows = list(device_rows)
                first = device_rows[0]
                key = f"{site}/{room}/{device}"
                devices.append({
                    "name": device, "key": key,
                    "status": first["status"] or "unknown", "status_at": first["status_at"],
                    "last_seen": first["last_seen"],
                    "attributes": [{
                        "name": r["attribute"], "key": f"{key}/{r['attribute']}",
                        "value": display_value(r["last_num"], r["last_txt"]),
                        "unit": r["unit"] or "", "ts": r["last_ts"],
                    } for r in device_rows if r["attribute"] is not None],
                })
            rooms.append({"name": room, "key": f"{site}/{room}", "devices": devices})
        sites.append({"name": site, "key": site, "rooms": rooms})
    return sites


@bp.app_template_filter("iso")
def iso(ts):
    """A timestamp as ISO 8601 UTC with milliseconds, the form octopus/live uses."""
    if ts is None:
        return None
    return ts.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@bp.app_template_filter("time_tag")
def time_tag(ts):
    """A timestamp as an HTML <time> element, machine- and human-readable both in iso's form."""
    return Markup('<time datetime="{0}">{0}</time>').format(iso(ts))


@bp.get("/")
def index():
    """The device tree with each attribute's last value, kept current by the live view."""
    sites = device_tree(tree_rows())
    return render_template("devices.html", sites=sites)


@bp.get("/devices/snapshot.json")
def snapshot():
    """Every last value and status, shaped like an octopus/live message.

    The page applies it after a reconnect, through the same code as a live message, to
    catch up on what it missed while disconnected.
    """
    readings, statuses = [], {}
    for row in tree_rows():
        names = {"site": row["site"], "room": row["room"], "device": row["device"]}
        if row["status"]:
            statuses[row["site"], row["room"], row["device"]] = {
                **names, "status": row["status"], "ts": iso(row["status_at"])}
        if row["attribute"] is not None:
            readings.append({**names, "attribute": row["attribute"], "ts": iso(row["last_ts"]),
                             "value": json_value(row["last_num"], row["last_txt"]),
                             "unit": row["unit"]})
    return jsonify(readings=readings, statuses=list(statuses.values()), rejects=0)
