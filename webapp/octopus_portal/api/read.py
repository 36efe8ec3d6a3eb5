"""GET endpoints: devices, attributes, latest values, history of one attribute, aggregates.

The queries are history.py's (one place for them, shared with the portal's pages); this
module turns parameters into selections and rows into stable JSON shapes.
"""
from datetime import timedelta
from itertools import groupby

from flask import jsonify

from .. import history
from ..db import get_db
from ..devices import json_value, tree_rows
from . import bp
from .auth import caller_site, narrow
from .errors import ApiError, quoted
from .params import iso_utc, pattern, text, time_range

# Longest range per chart resolution (raw: history.RAW_MAX): about 45,000 points at most.
SERIES_MAX = {"minute": timedelta(days=31), "hour": timedelta(days=5 * 366)}

LATEST_SQL = """
SELECT d.site, d.room, d.name AS device, a.name AS attribute, a.unit, a.last_ts, a.last_num,
       a.last_txt
  FROM attributes a JOIN devices d ON d.id = a.device_id
 WHERE {where} AND a.last_ts IS NOT NULL
 ORDER BY d.site, d.room, d.name, a.name"""


def topic_of(row):
    return f"{row['site']}/{row['room']}/{row['device']}/{row['attribute']}"


@bp.get("/devices")
def devices():
    """Every device with its status and its attributes' last values."""
    answer = []
    for (site, room, name), device_rows in groupby(
            tree_rows(caller_site()), key=lambda r: (r["site"], r["room"], r["device"])):
        device_rows = list(device_rows)
        first = device_rows[0]
        topic = f"{site}/{room}/{name}"
        answer.append({
            "site": site, "room": room, "name": name, "topic": topic,
            "status": first["status"], "status_at": iso_utc(first["status_at"]),
            "first_seen": iso_utc(first["first_seen"]), "last_seen": iso_utc(first["last_seen"]),
            "attributes": [{"name": r["attribute"], "topic": f"{topic}/{r['attribute']}",
                            "unit": r["unit"], "last_ts": iso_utc(r["last_ts"]),
                            "last_value": json_value(r["last_num"], r["last_txt"])}
                           for r in device_rows if r["attribute"] is not None],
        })
    return jsonify(devices=answer)


@bp.get("/attributes")
def attributes():
    """The attributes a topic filter matches."""
    rows = history.attributes(get_db(), narrow(pattern()))
    return jsonify(attributes=[{"topic": topic_of(r), "site": r["site"], "room": r["room"],
                                "device": r["device"], "attribute": r["attribute"],
                                "unit": r["unit"]} for r in rows])


@bp.get("/latest")
def latest():
    """The last value of every attribute a topic filter matches."""
    where, params = narrow(pattern()).where()
    rows = get_db().execute(LATEST_SQL.format(where=where), params).fetchall()
    return jsonify(readings=[{"topic": topic_of(r), "ts": iso_utc(r["last_ts"]),
                              "value": json_value(r["last_num"], r["last_txt"]),
                              "unit": r["unit"]} for r in rows])


def one_attribute(topic):
    """The stored attribute named by a full topic; ApiError 400 / 403 / 404 otherwise."""
    selection = history.Selection.parse(topic)
    if any(level in ("+", "#") for level in selection.levels):
        raise ApiError(400, f"topic {quoted(topic)}: name one attribute, "
                            "site/room/device/attribute, without + or #")
    rows = history.attributes(get_db(), narrow(selection))
    if not rows:
        raise ApiError(404, f"no readings stored for {quoted(topic)}: /api/v1/attributes lists "
                            "the topics there are")
    return rows[0]


@bp.get("/history")
def series():
    """One attribute over a range: raw readings, or per-minute / per-hour buckets."""
    attribute = one_attribute(text("topic", required=True))
    asked = text("resolution", "auto")
    start, end = time_range()
    resolution = history.pick_resolution(start, end, None if asked == "auto" else asked)
    if resolution in SERIES_MAX:
        history.check_range(start, end, SERIES_MAX[resolution])
    rows = history.series(get_db(), attribute["id"], start, end, resolution)
    if resolution == "raw":
        points = [{"ts": iso_utc(r["ts"]), "value": json_value(r["value"], r["txt"])}
                  for r in rows]
    else:
        points = [{"ts": iso_utc(r["ts"]), "mean": r["mean"], "min": r["min"], "max": r["max"],
                   "n": r["n"]} for r in rows]
    return jsonify(topic=topic_of(attribute), unit=attribute["unit"], resolution=resolution,
                   **{"from": iso_utc(start), "to": iso_utc(end)}, points=points)


def aggregate_selection():
    """The `devices` filter and `attribute` as a selection with at least one stored match."""
    devices, name = text("devices", "#"), text("attribute", required=True)
    selection = narrow(history.Selection.devices_and_attribute(devices, name))
    if not history.attributes(get_db(), selection):
        raise ApiError(404, f"no device matching {quoted(devices)} has readings of {quoted(name)}: "
                            "/api/v1/attributes lists the topics there are")
    return devices, name, selection


def aggregate_rows():
    """(devices, attribute, start, end, per-minute rows) for the aggregate parameters."""
    devices, name, selection = aggregate_selection()
    start, end = time_range(history.AGGREGATE_MAX)
    return devices, name, start, end, history.aggregate(get_db(), selection, start, end)


@bp.get("/aggregates")
def aggregates():
    """Per-minute mean, min, max, count and the devices with the min and the max."""
    devices, name, start, end, rows = aggregate_rows()
    minutes = [{"minute": iso_utc(r["minute"]), "mean": r["mean"], "min": r["min"],
                "max": r["max"], "n": r["n"], "min_device": r["min_device"],
                "max_device": r["max_device"]} for r in rows]
    return jsonify(devices=devices, attribute=name, **{"from": iso_utc(start), "to": iso_utc(end)},
                   minutes=minutes)
