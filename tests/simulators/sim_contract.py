"""doc/topics.md as a reference classifier, to check what the simulators publish.

It reads the contract literally; the ingest's own parser is tested on the platform's side.
"""
import json
import math
import re
from datetime import datetime

MAX_PAYLOAD_BYTES = 65536  # INGEST_MAX_PAYLOAD_BYTES's default in .env.example
NUMBER = re.compile(r"^-?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?$")
STATE = re.compile(r"^[A-Za-z][A-Za-z0-9 _.:-]{0,63}$")
NOT_A_NUMBER = re.compile(r"^(?:nan|[+-]?inf(?:inity)?)$", re.I)  # refused, not a state
ISO_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _no_constants(name):
    raise ValueError(f"{name} is not JSON")


def _is_value(value):
    if isinstance(value, bool):
        return True
    if isinstance(value, (int, float)):
        return math.isfinite(value)
    return isinstance(value, str) and bool(STATE.match(value)) and not NOT_A_NUMBER.match(value)


def _is_time(ts):
    if isinstance(ts, bool):
        return False
    if isinstance(ts, (int, float)):
        return math.isfinite(ts) and ts >= 0  # epoch milliseconds
    if not isinstance(ts, str) or not ISO_DATE_TIME.match(ts):
        return False
    try:
        datetime.fromisoformat(ts)
        return True
    except ValueError:
        return False


def _value_problem(text):
    """None if `text` is a valid measurement payload, else why not."""
    if NOT_A_NUMBER.match(text):
        return "not a finite number"
    if NUMBER.match(text) or text in ("true", "false") or STATE.match(text):
        return None
    if not text.startswith("{"):
        return "unparseable value"
    try:
        body = json.loads(text, parse_constant=_no_constants)
    except ValueError:
        return "invalid JSON"
    if not isinstance(body, dict) or "value" not in body:
        return "JSON without value"
    if not _is_value(body["value"]):
        return "JSON value is not a number, boolean or state string"
    if "ts" in body and not _is_time(body["ts"]):
        return "ts is not a time"
    if "unit" in body and not isinstance(body["unit"], (str, type(None))):
        return "unit is not text"
    return None


def classify(topic, payload):
    """('measurement' | 'status' | 'command' | 'platform' | 'reject', reason or None)."""
    if topic.startswith("octopus/"):
        return "platform", None
    levels = topic.split("/")
    if any(level == "" for level in levels):
        return "reject", "empty level"
    if any("+" in level or "#" in level or level.startswith("$") for level in levels):
        return "reject", "forbidden character in a level"
    if len(levels) == 5 and levels[4] == "set":
        return "command", None
    if len(levels) != 4:
        return "reject", f"{len(levels)} levels instead of 4"
    if len(payload) > MAX_PAYLOAD_BYTES:
        return "reject", "payload too large"
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return "reject", "payload is not UTF-8"
    if levels[3] == "status":
        return ("status", None) if text in ("online", "offline") else ("reject", "bad status")
    problem = _value_problem(text)
    return ("reject", problem) if problem else ("measurement", None)
