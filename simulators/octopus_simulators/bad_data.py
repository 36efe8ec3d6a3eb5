"""Malformed messages, one kind per way a device can get it wrong.

Every message made here is a reject under doc/topics.md: the ingest must count it, keep it
with its reason, and carry on. The kinds come from what real devices send: firmware that
prints garbage or `NaN`, a comma as decimal separator, a JSON document cut short, a topic
built from an empty variable, a payload in the wrong encoding.
"""
import json

from .payloads import Message, format_number, iso_time


def _garbage(rng, device_topic, attribute, value, unit, t):
    payload = rng.choice(["#@!", "***", "?!?", "<<>>", "%$&", "--"])
    return f"{device_topic}/{attribute}", payload.encode()


def _nan(rng, device_topic, attribute, value, unit, t):
    # What a broken firmware prints when its reading is not a number, bare or inside JSON
    # (which has no NaN); the ingest refuses every one rather than keep it as a state.
    payload = rng.choice(["NaN", "nan", "-NaN", f'{{"value": NaN, "unit": "{unit}"}}',
                          '{"value": -Infinity}'])
    return f"{device_topic}/{attribute}", payload.encode()


def _number_with_letters(rng, device_topic, attribute, value, unit, t):
    number = format_number(value, 1)
    payload = rng.choice([f"{int(value)}abc", number.replace(".", ",") if "." in number
                          else f"{number},5", "1.2.3", f"{number}{unit or 'x'}", "12abc"])
    return f"{device_topic}/{attribute}", payload.encode()


def _truncated_json(rng, device_topic, attribute, value, unit, t):
    whole = json.dumps({"value": round(value, 2), "ts": iso_time(t), "unit": unit},
                       ensure_ascii=False).encode()
    # Any proper prefix of a JSON object is invalid JSON (it lacks the closing brace).
    return f"{device_topic}/{attribute}", whole[:rng.randrange(1, len(whole))]


def _wrong_depth(rng, device_topic, attribute, value, unit, t):
    site, room, _device = device_topic.split("/")
    topic = rng.choice([
        device_topic,                              # 3 levels: the attribute is missing
        f"{site}/{room}",                          # 2 levels
        f"{device_topic}/{attribute}/raw",         # 5 levels that are not a command (/set)
        f"{device_topic}/{attribute}/raw/extra",   # 6 levels
    ])
    return topic, format_number(value, 2).encode()


def _empty_level(rng, device_topic, attribute, value, unit, t):
    site, room, device = device_topic.split("/")
    topic = rng.choice([
        f"{site}//{device}/{attribute}",           # an unset variable in the middle
        f"/{room}/{device}/{attribute}",           # a leading slash
        f"{site}/{room}/{device}/",                # an unset attribute name
    ])
    return topic, format_number(value, 2).encode()


def _non_utf8(rng, device_topic, attribute, value, unit, t):
    # 0xFF never occurs in UTF-8; `23.5°C` in Latin-1 has a lone 0xB0.
    number = format_number(value, 1)
    payload = rng.choice([b"\xff\xfe" + number.encode(), number.encode() + b"\xb0C",
                          bytes([rng.randrange(0x80, 0x100) for _ in range(8)]) + b"\xff"])
    return f"{device_topic}/{attribute}", payload


def _json_without_value(rng, device_topic, attribute, value, unit, t):
    number = round(value, 2)
    body = rng.choice([{"unit": unit}, {"val": number, "unit": unit}, {},
                       {"value": None, "unit": unit}, {"reading": {"value": number}}])
    return f"{device_topic}/{attribute}", json.dumps(body, ensure_ascii=False).encode()


def _bad_ts(rng, device_topic, attribute, value, unit, t):
    ts = rng.choice(["ayer", "2026-13-45T99:00:00Z", "", True, [2026, 11, 22]])
    body = {"value": round(value, 2), "ts": ts, "unit": unit}
    return f"{device_topic}/{attribute}", json.dumps(body, ensure_ascii=False).encode()


MAKERS = {
    "garbage": _garbage,
    "nan": _nan,
    "number_with_letters": _number_with_letters,
    "truncated_json": _truncated_json,
    "wrong_depth": _wrong_depth,
    "empty_level": _empty_level,
    "non_utf8": _non_utf8,
    "json_without_value": _json_without_value,
    "bad_ts": _bad_ts,
}
KINDS = tuple(MAKERS)


def bad_message(rng, device_topic, attribute, value, unit, t, kind=None):
    """A malformed message in place of the reading `value` of `attribute`.

    `device_topic` is `<site>/<room>/<device>`; `kind` (one of KINDS) is chosen at random
    when not given. The message's `kind` says which way it is wrong.
    """
    kind = kind or rng.choice(KINDS)
    if kind not in MAKERS:
        raise ValueError(f"unknown bad-data kind {kind!r}; expected one of {KINDS}")
    topic, payload = MAKERS[kind](rng, device_topic, attribute, value, unit, t)
    return Message(topic, payload, kind)
