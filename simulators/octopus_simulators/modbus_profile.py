"""Modbus register maps ("profiles", modbus/profiles/<model>.json): load, validate, encode.

A profile lists a device's attributes and where each one sits: register kind, 0-based
address, type, word and byte order, scale, offset, unit and, for an enumeration, the raw
value of each state. physical = raw * scale + offset. doc/modbus.md describes the format.
"""
import json
import math
import os
import re
import struct
from decimal import Decimal
from dataclasses import dataclass, field
from pathlib import Path

PROFILES_DIR = Path(__file__).resolve().parents[2] / "modbus" / "profiles"

REGISTER_KINDS = ("coil", "discrete", "holding", "input")
BIT_KINDS = {"coil", "discrete"}
# type: (struct format, registers, lowest raw, highest raw)
TYPES = {
    "int16": ("h", 1, -2**15, 2**15 - 1),
    "uint16": ("H", 1, 0, 2**16 - 1),
    "int32": ("i", 2, -2**31, 2**31 - 1),
    "uint32": ("I", 2, 0, 2**32 - 1),
    "float32": ("f", 2, None, None),
}
ORDERS = ("big", "little")
# The rules are those of the platform's reader (nodered/.../lib/modbus-profile.js), so that
# the simulator never serves a profile that the poller would refuse.
KEYS = {"name", "register", "address", "type", "word_order", "byte_order", "scale", "offset",
        "unit", "states", "description"}
PROFILE_KEYS = {"model", "title", "source", "description", "attributes"}
# A profile's name, as modbus_devices.profile allows it (postgres/migrations/006).
MODEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# An attribute name is a topic level (doc/topics.md); "status" is the availability topic.
NAME = re.compile(r"^[^/+#$\x00-\x1f\x7f][^/+#\x00-\x1f\x7f]{0,127}$")
# What the ingest takes as a state string and as a unit.
STATE = re.compile(r"^[^\W\d_][\w .:-]{0,63}$")
UNIT = re.compile(r"^[^\x00-\x1f\x7f]{1,32}$")


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file and the attribute."""


@dataclass(frozen=True)
class Attribute:
    """One value of a device and how it is laid out in registers."""
    name: str
    register: str
    address: int
    type: str = "bool"
    word_order: str = "big"
    byte_order: str = "big"
    scale: float = 1
    offset: float = 0
    unit: str = ""
    states: dict = field(default_factory=dict)   # raw integer -> state name

    @property
    def size(self):
        """Registers (or bits, for coils and discrete inputs) the attribute takes."""
        return 1 if self.register in BIT_KINDS else TYPES[self.type][1]

    def encode(self, value):
        """Registers (or [bool]) holding `value`: a number, a bool, or one of the states."""
        if self.register in BIT_KINDS:
            return [bool(self._raw_state(value) if isinstance(value, str) else value)]
        fmt, _size, low, high = TYPES[self.type]
        if isinstance(value, str):
            raw = self._raw_state(value)
        elif self.type == "float32":
            raw = (value - self.offset) / self.scale
        else:
            raw = round((value - self.offset) / self.scale)
        if low is not None and not low <= raw <= high:
            raise ValueError(f"{self.name}={value!r} is out of range for {self.type} "
                             f"with scale {self.scale} and offset {self.offset}")
        try:
            packed = struct.pack(">" + fmt, raw)
        except OverflowError:
            raise ValueError(f"{self.name}={value!r} does not fit a float32") from None
        words = [packed[i:i + 2] for i in range(0, len(packed), 2)]
        if self.word_order == "little":
            words.reverse()
        if self.byte_order == "little":
            words = [w[::-1] for w in words]
        return [int.from_bytes(w, "big") for w in words]

    def decode(self, registers):
        """The physical value that `registers` (as encoded above) carry."""
        if self.register in BIT_KINDS:
            raw = int(bool(registers[0]))
            return self.states.get(raw, bool(raw)) if self.states else bool(raw)
        words = [r.to_bytes(2, "big") for r in registers[:self.size]]
        if self.byte_order == "little":
            words = [w[::-1] for w in words]
        if self.word_order == "little":
            words.reverse()
        raw = struct.unpack(">" + TYPES[self.type][0], b"".join(words))[0]
        if self.states:
            return self.states.get(raw, raw)
        if self.type == "float32":
            return raw * self.scale + self.offset
        # To the scale's and offset's decimals: 13209.3, not 13209.300000000001.
        return round(raw * self.scale + self.offset, self.decimals)

    @property
    def decimals(self):
        """Decimal places of a scaled integer: those of scale and offset as written."""
        return max(0, *(-Decimal(repr(x)).as_tuple().exponent for x in (self.scale, self.offset)))

    def served(self, value):
        """What a client decodes when the device serves `value`: rounded to the register."""
        return self.decode(self.encode(value))

    def _raw_state(self, state):
        for raw, name in self.states.items():
            if name == state:
                return raw
        raise ValueError(f"{self.name}: {state!r} is not one of its states "
                         f"{sorted(self.states.values())}")


@dataclass(frozen=True)
class Profile:
    """A device model's register map."""
    model: str
    title: str
    attributes: tuple
    path: Path

    def by_kind(self, kind):
        """The attributes held in one register kind, by address."""
        return sorted((a for a in self.attributes if a.register == kind),
                      key=lambda a: a.address)


def profile_path(model, directory=None):
    """modbus/profiles/<model>.json, or under MODBUS_PROFILES_DIR, or under `directory`."""
    if not isinstance(model, str) or not MODEL.match(model):
        raise ProfileError(f"profile name {model!r} is not valid: expected lower-case letters, "
                           f"digits, '-' and '_', as in osm27")
    directory = directory or os.environ.get("MODBUS_PROFILES_DIR") or PROFILES_DIR
    return Path(directory) / f"{model}.json"


def load(model, directory=None):
    """The validated profile of `model`; ProfileError names what is wrong and where."""
    path = profile_path(model, directory)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such profile (set MODBUS_PROFILES_DIR or pick one of "
                           f"{sorted(p.stem for p in path.parent.glob('*.json'))})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileError(f"{path}: not readable as JSON: {exc}") from None
    return parse(document, path)


def parse(document, path):
    """A Profile from the decoded JSON `document` read from `path`."""
    path = Path(path)

    def fail(message):
        raise ProfileError(f"{path}: {message}")

    if not isinstance(document, dict):
        fail("the top level must be an object")
    if unknown := set(document) - PROFILE_KEYS:
        fail(f"unknown keys {sorted(unknown)} (allowed: {sorted(PROFILE_KEYS)})")
    if document.get("model", path.stem) != path.stem:
        fail(f"\"model\" must be {path.stem!r}, the file's name, got {document['model']!r}")
    attributes = document.get("attributes")
    if not isinstance(attributes, list) or not attributes:
        fail("\"attributes\" must be a non-empty list")
    parsed = tuple(_attribute(entry, i, fail) for i, entry in enumerate(attributes))
    names = [a.name for a in parsed]
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        fail(f"attribute names used twice: {duplicates}")
    for kind in REGISTER_KINDS:
        placed = sorted((a for a in parsed if a.register == kind), key=lambda a: a.address)
        for before, after in zip(placed, placed[1:]):
            if before.address + before.size > after.address:
                fail(f"attribute {after.name!r}: {kind} address {after.address} overlaps "
                     f"{before.name!r} ({before.type} at {before.address})")
    return Profile(path.stem, str(document.get("title", path.stem)), parsed, path)


def _attribute(entry, index, fail):
    where = f"attribute #{index + 1}"
    if not isinstance(entry, dict):
        fail(f"{where} must be an object")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME.match(name) or name == "status":
        fail(f"{where}: \"name\" must be a topic level other than status (no '/', '+', '#' "
             f"or leading '$'), got {name!r}")
    where = f"attribute {name!r}"
    if unknown := set(entry) - KEYS:
        fail(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(KEYS)})")
    kind = entry.get("register")
    if kind not in REGISTER_KINDS:
        fail(f"{where}: \"register\" must be one of {list(REGISTER_KINDS)}, got {kind!r}")
    bits = kind in BIT_KINDS
    kind_type = entry.get("type", "bool" if bits else None)
    if bits and (kind_type != "bool" or "word_order" in entry or "byte_order" in entry):
        fail(f"{where}: a {kind} is a single bit: leave out \"type\" and the orders")
    if not bits and kind_type not in TYPES:
        fail(f"{where}: \"type\" must be one of {list(TYPES)}, got {kind_type!r}")
    size = 1 if bits else TYPES[kind_type][1]
    address = entry.get("address")
    if type(address) is not int or not 0 <= address <= 65536 - size:
        fail(f"{where}: \"address\" must be a whole number from 0 to {65536 - size}, "
             f"got {address!r}")
    values = {}
    for key in ("word_order", "byte_order"):
        values[key] = entry.get(key, "big")
        if values[key] not in ORDERS:
            fail(f"{where}: \"{key}\" must be \"big\" or \"little\", got {values[key]!r}")
    if values["word_order"] == "little" and size != 2:
        fail(f"{where}: \"word_order\" is for 32-bit types, not {kind_type}")
    for key, default in (("scale", 1), ("offset", 0)):
        values[key] = entry.get(key, default)
        if type(values[key]) not in (int, float) or not math.isfinite(values[key]):
            fail(f"{where}: \"{key}\" must be a number, got {values[key]!r}")
    if values["scale"] == 0:
        fail(f"{where}: \"scale\" cannot be 0")
    unit = entry.get("unit", "")
    if "unit" in entry and not (isinstance(unit, str) and UNIT.match(unit)):
        fail(f"{where}: \"unit\" must be 1 to 32 printable characters, got {unit!r}")
    states = {}
    if "states" in entry:
        if "scale" in entry or "offset" in entry:
            fail(f"{where}: \"states\" name raw values: leave out \"scale\" and \"offset\"")
        states = _states(entry["states"], kind_type, where, fail)
    return Attribute(name=name, register=kind, address=address, type=kind_type,
                     unit=unit, states=states, **values)


def _states(states, kind_type, where, fail):
    if not isinstance(states, dict) or not states:
        fail(f"{where}: \"states\" must be an object of raw value -> state name")
    if kind_type == "float32":
        fail(f"{where}: \"states\" needs an integer type, not float32")
    low, high = (0, 1) if kind_type == "bool" else TYPES[kind_type][2:]
    parsed = {}
    for raw, state in states.items():
        if not re.fullmatch(r"-?\d+", raw) or not low <= int(raw) <= high:
            fail(f"{where}: state key {raw!r} must be a whole number from {low} to {high}")
        if not isinstance(state, str) or not STATE.match(state):
            fail(f"{where}: state {state!r} must start with a letter and hold only letters, "
                 f"digits, space and _.:- (64 at most)")
        if state in parsed.values():
            fail(f"{where}: state {state!r} is given to two raw values")
        parsed[int(raw)] = state
    return parsed
