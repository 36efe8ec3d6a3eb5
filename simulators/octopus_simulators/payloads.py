"""Well-formed MQTT messages, in each of the payload forms of doc/topics.md."""
import json
from dataclasses import dataclass
from datetime import datetime, timezone

# How a reading is written: a bare number, or JSON with its unit, sometimes with its own
# time (as ISO 8601 or epoch milliseconds), so every accepted form is exercised.
FORMS = ("bare", "json", "json_ts_iso", "json_ts_ms")
FORM_WEIGHTS = (50, 30, 10, 10)


@dataclass(frozen=True)
class Message:
    """One MQTT publication: topic, payload bytes, and what kind of message it is."""
    topic: str
    payload: bytes
    kind: str


def format_number(value, decimals):
    """`value` rounded to `decimals`, as the shortest decimal text (`23.5`, `-4`, never `-0`)."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def iso_time(t):
    """Epoch seconds as ISO 8601 UTC with milliseconds, e.g. `2026-11-22T12:00:00.000Z`."""
    moment = datetime.fromtimestamp(t, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def choose_form(rng):
    """A payload form, bare numbers being the most common."""
    return rng.choices(FORMS, weights=FORM_WEIGHTS)[0]


def reading(topic, value, unit, decimals, form, t):
    """A measurement message for `topic` in the given form; `t` is the reading's epoch time.

    `value` is a number, or a state string (`produciendo`) sent as it is, without a unit.
    """
    if isinstance(value, str):
        text, body = value, {"value": value}
    else:
        text = format_number(value, decimals)
        body = {"value": json.loads(text), "unit": unit}
    if form == "bare":
        return Message(topic, text.encode(), form)
    if form == "json_ts_iso":
        body["ts"] = iso_time(t)
    elif form == "json_ts_ms":
        body["ts"] = int(t * 1000)
    elif form != "json":
        raise ValueError(f"unknown payload form {form!r}; expected one of {FORMS}")
    return Message(topic, json.dumps(body, ensure_ascii=False).encode(), form)
