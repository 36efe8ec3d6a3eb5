"""HTTP ingest: readings POSTed here are published to MQTT, so they take the devices' path.

The Node-RED ingest then validates and stores each one, or records it as a reject, exactly
as for a device (doc/topics.md). Here only what must hold for a safe publish is checked:
a 4-level device topic outside `octopus/`, and a JSON scalar value.
"""
import json
import math
import re

from flask import jsonify, request

from .. import live
from ..topics import LEVEL
from . import bp
from .auth import check_site
from .errors import ApiError, quoted

MAX_READINGS = 1000
MAX_BODY_BYTES = 1024 * 1024
PUBLISH_TIMEOUT = 10.0  # seconds to wait for the broker's PUBACKs
FIELDS = {"topic", "value", "ts", "unit"}
MEASUREMENT_TOPIC = re.compile(rf"({LEVEL})/{LEVEL}/{LEVEL}/({LEVEL})")


def bad(index, message):
    where = f"readings[{index}]: " if index is not None else ""
    return ApiError(400, where + message)


def check_reading(reading, index=None):
    """The (topic, payload bytes) to publish for one reading; ApiError 400 / 403 if wrong."""
    if not isinstance(reading, dict):
        raise bad(index, 'a reading is an object: {"topic": ..., "value": ...}')
    unknown = set(reading) - FIELDS
    if unknown:
        raise bad(index, f"unknown field {quoted(sorted(unknown)[0])}: a reading has topic, "
                         "value, ts and unit")
    topic = reading.get("topic")
    match = MEASUREMENT_TOPIC.fullmatch(topic) if isinstance(topic, str) else None
    if match is None or topic.startswith("octopus/"):
        raise bad(index, f"topic {quoted(topic)} is not a measurement topic "
                         "site/room/device/attribute (no + or #, not under octopus/)")
    if match.group(2) == "status":
        raise bad(index, f"{quoted(topic)} is a device's availability topic, not a measurement")
    check_site(match.group(1))
    value, ts, unit = reading.get("value"), reading.get("ts"), reading.get("unit")
    if not (isinstance(value, str) or is_finite_number(value)):
        raise bad(index, '"value" must be a finite number, true/false or a state string')
    if ts is not None and not (isinstance(ts, str) or is_finite_number(ts)
                               and not isinstance(ts, bool)):
        raise bad(index, '"ts" must be ISO 8601 with a zone (2026-11-22T12:00:00Z) or epoch '
                         "milliseconds")
    if unit is not None and not isinstance(unit, str):
        raise bad(index, '"unit" must be a string')
    # the payload a device would send; without ts the ingest stamps the arrival time
    payload = {"value": value, **({"ts": ts} if ts is not None else {}),
               **({"unit": unit} if unit is not None else {})}
    try:
        topic.encode()
        return topic, json.dumps(payload, ensure_ascii=False).encode()
    except UnicodeEncodeError:  # JSON's "\ud800": a lone surrogate is no UTF-8 text
        raise bad(index, "the topic or a text field is not valid Unicode text") from None


def is_finite_number(value):
    """True for a JSON number or boolean that the ingest can take (no NaN or Infinity)."""
    return isinstance(value, (int, float)) and (isinstance(value, int) or math.isfinite(value))


def readings_in_body():
    """The readings of the JSON body: one object, or {"readings": [...]}."""
    if not request.is_json:
        raise ApiError(415, "send JSON with Content-Type: application/json")
    request.max_content_length = MAX_BODY_BYTES  # a larger body is a 413, never read whole
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, 'the body must be a JSON object: {"topic": ..., "value": ...} or '
                            '{"readings": [...]}')
    if "readings" not in body:
        return [check_reading(body)]
    readings = body["readings"]
    if set(body) != {"readings"} or not isinstance(readings, list) or not readings:
        raise ApiError(400, '"readings" must be the only field, a list of 1 to '
                            f"{MAX_READINGS} readings")
    if len(readings) > MAX_READINGS:
        raise ApiError(400, f"{len(readings)} readings in one call: at most {MAX_READINGS}")
    return [check_reading(reading, i) for i, reading in enumerate(readings)]


@bp.post("/readings")
def post_readings():
    """Publish readings at QoS 1; 202 once the broker has every one."""
    messages = readings_in_body()  # every reading is checked before any is published
    try:
        live.publish(messages, timeout=PUBLISH_TIMEOUT)
    except live.PublishError as exc:
        raise ApiError(503, str(exc)) from None
    return jsonify(accepted=len(messages)), 202
