"""What a valid alert rule is: the checks behind the rules form (alert_rules.py), one
message per field, and a rule's test in words."""
import math
import re

from .topics import is_level

KINDS = ("threshold", "offline", "stale")
SEVERITIES = ("info", "warning", "critical")
# which of low / high each threshold condition compares with (alert_rules' CHECK)
CONDITIONS = {"above": ("high",), "below": ("low",), "outside": ("low", "high"),
              "inside": ("low", "high")}
# what each kind's form asks, besides name, devices, severity, message and enabled
KIND_FIELDS = {
    "threshold": ("attribute", "condition", "low", "high", "hysteresis", "on_delay_s",
                  "off_delay_s"),
    "offline": ("on_delay_s", "off_delay_s"),
    "stale": ("attribute", "stale_after_s", "off_delay_s"),
}
FIELDS = ("name", "devices", "attribute", "condition", "low", "high", "hysteresis",
          "on_delay_s", "off_delay_s", "stale_after_s", "severity", "message")
# {placeholders} Node-RED fills in a rule's message
PLACEHOLDERS = ("rule", "device", "site", "room", "attribute", "value", "unit", "severity",
                "topic")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
DEFAULT_MESSAGES = {
    "threshold": "{rule}: {attribute} of {site}/{room}/{device} is {value} {unit}",
    "offline": "{rule}: {site}/{room}/{device} is offline",
    "stale": "{rule}: no {attribute} from {site}/{room}/{device}",
}
NAME_MAX, DEVICES_MAX, MESSAGE_MAX = 100, 400, 500
DELAY_MAX_S, STALE_MAX_S = 86400, 30 * 86400


def devices_problem(text):
    """What is wrong with a devices filter (MQTT, over <site>/<room>/<device>), or None."""
    levels = text.split("/")
    if not text or len(text) > DEVICES_MAX:
        return f"an MQTT filter over site/room/device, 1 to {DEVICES_MAX} characters."
    if "" in levels:
        return "an empty level (a '/' at either end, or '//')."
    last = len(levels) - 1
    if any("#" in level and (level != "#" or i != last) for i, level in enumerate(levels)):
        return "'#' may only be the whole last level, e.g. planta/#."
    if any("+" in level and level != "+" for level in levels):
        return "'+' may only be a whole level, e.g. oficina/+/servidor1."
    fixed = len(levels) - (levels[-1] == "#")
    if fixed > 3 or (levels[-1] != "#" and fixed != 3):
        return ("3 levels site/room/device (e.g. oficina/servidores/+), or at most 3 "
                "followed by '#' (e.g. planta/#, or # for every device).")
    if not all(level in ("+", "#") or is_level(level) for level in levels):
        return "a level is not a topic level (at most 128 characters, no '$' first, no " \
               "control characters)."
    return None


def message_problem(text):
    """What is wrong with a message template, or None."""
    if len(text) > MESSAGE_MAX:
        return f"at most {MESSAGE_MAX} characters."
    unknown = [name for name in PLACEHOLDER.findall(text) if name not in PLACEHOLDERS]
    if unknown:
        return (f"unknown placeholder {{{unknown[0]}}}; these exist: "
                + " ".join(f"{{{name}}}" for name in PLACEHOLDERS) + ".")
    return None


def number(form, field, problems, message, minimum=-math.inf, maximum=math.inf,
           default=None):
    """The form's `field` as a finite float within bounds (`default` if empty), or None
    with `message` in problems[field]."""
    text = form.get(field, "").strip()
    if text == "" and default is not None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and minimum <= value <= maximum):
        problems[field] = message
        return None
    return value


def check_rule(kind, form):
    """The row to store from a `kind` rule's form values, and what is wrong with them
    ({field: message}; empty: fine). Fields the kind does not use are stored empty."""
    problems = {}
    row = {"kind": kind, "name": form["name"], "devices": form["devices"],
           "attribute": None, "condition": None, "low": None, "high": None,
           "hysteresis": 0.0, "on_delay_s": 0.0, "off_delay_s": 0.0, "stale_after_s": None,
           "severity": form["severity"], "message": form["message"],
           "enabled": form["enabled"]}
    if not row["name"] or len(row["name"]) > NAME_MAX or not row["name"].isprintable():
        problems["name"] = f"1 to {NAME_MAX} printable characters."
    problems["devices"] = devices_problem(row["devices"])
    if row["severity"] not in SEVERITIES:
        problems["severity"] = "one of " + ", ".join(SEVERITIES) + "."
    problems["message"] = message_problem(row["message"])
    fields = KIND_FIELDS[kind]
    if "attribute" in fields:
        row["attribute"] = form["attribute"]
        if row["attribute"] == "status":
            problems["attribute"] = "status is a device's availability: use an offline rule."
        elif row["attribute"] != "+" and not is_level(row["attribute"]):
            problems["attribute"] = "one attribute name as in topics (no '/', '#'), or + " \
                                    "for every attribute."
    if "condition" in fields:
        row["condition"] = form["condition"]
        if row["condition"] not in CONDITIONS:
            problems["condition"] = "one of " + ", ".join(CONDITIONS) + "."
        for limit in CONDITIONS.get(row["condition"], ()):
            row[limit] = number(form, limit, problems, f"a number: '{row['condition']}' "
                                f"compares with it.")
        if row["low"] is not None and row["high"] is not None and row["low"] > row["high"]:
            problems["high"] = "at least as much as Low."
        row["hysteresis"] = number(form, "hysteresis", problems,
                                   "a number, 0 or more (empty: 0).", 0, default=0.0)
        if (row["condition"] == "outside" and None not in (row["low"], row["high"])
                and row["hysteresis"] is not None and row["low"] <= row["high"]
                and row["high"] - row["low"] < 2 * row["hysteresis"]):
            # the alert clears between low + hysteresis and high - hysteresis: there must be room
            problems["hysteresis"] = "at most half of High − Low, or an outside alert could " \
                                     "never clear."
    for field in ("on_delay_s", "off_delay_s"):
        if field in fields:
            row[field] = number(form, field, problems, f"seconds from 0 to {DELAY_MAX_S} "
                                "(empty: 0).", 0, DELAY_MAX_S, default=0.0)
    if "stale_after_s" in fields:
        row["stale_after_s"] = number(form, "stale_after_s", problems,
                                      f"seconds from 1 to {STALE_MAX_S}.", 1, STALE_MAX_S)
    return row, {field: text for field, text in problems.items() if text}


def shown(value):
    """A stored number as the form shows it: 30, 0.5, 1e-07; empty for none."""
    return "" if value is None else f"{value:.15g}"


def describe(rule):
    """A rule's test in a few words, e.g. 'temperatura > 30 (hysteresis 1)'."""
    attribute = "any attribute" if rule["attribute"] == "+" else rule["attribute"]
    low, high = shown(rule["low"]), shown(rule["high"])
    if rule["kind"] == "offline":
        return "status is offline"
    if rule["kind"] == "stale":
        return f"no reading of {attribute} for {shown(rule['stale_after_s'])} s"
    test = {"above": f"{attribute} > {high}", "below": f"{attribute} < {low}",
            "outside": f"{attribute} < {low} or > {high}",
            "inside": f"{low} ≤ {attribute} ≤ {high}"}[rule["condition"]]
    return test + (f" (hysteresis {shown(rule['hysteresis'])})" if rule["hysteresis"] else "")


def timing(rule):
    """A rule's delays in words, e.g. 'raised after 10 s, cleared after 5 s'."""
    parts = [f"{what} after {shown(rule[field])} s"
             for what, field in (("raised", "on_delay_s"), ("cleared", "off_delay_s"))
             if rule[field]]
    return ", ".join(parts) or "at once"
