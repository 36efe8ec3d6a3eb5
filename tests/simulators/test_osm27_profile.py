"""Modbus profiles: the osm27 map loads, any profile encodes as pymodbus decodes, and a bad
profile is refused with a message naming the file and the attribute."""
import json

import pytest
from pymodbus.client import ModbusTcpClient

from octopus_simulators import modbus_profile
from octopus_simulators.modbus_profile import ProfileError

DATATYPE = ModbusTcpClient.DATATYPE


def pymodbus_decode(attribute, registers):
    """What a client using pymodbus makes of the registers, independently of our decoder."""
    if attribute.byte_order == "little":
        registers = [((r & 0xFF) << 8) | (r >> 8) for r in registers]
    raw = ModbusTcpClient.convert_from_registers(
        registers, DATATYPE[attribute.type.upper()], word_order=attribute.word_order)
    if attribute.states:
        return attribute.states.get(raw, raw)
    return raw * attribute.scale + attribute.offset


def write_profile(directory, attributes, model="test"):
    path = directory / f"{model}.json"
    path.write_text(json.dumps({"model": model, "title": "test", "attributes": attributes}))
    return path


def test_the_osm27_profile_loads_with_its_ten_attributes():
    profile = modbus_profile.load("osm27")
    assert profile.model == "osm27" and profile.path.name == "osm27.json"
    assert [a.name for a in profile.attributes] == [
        "ia", "ib", "ic", "va", "vb", "vc", "p_act", "p_react", "fp", "estado"]
    va = next(a for a in profile.attributes if a.name == "va")
    assert (va.register, va.address, va.type, va.word_order, va.scale, va.size) == (
        "input", 3, "uint32", "little", 0.1, 2)
    estado = profile.by_kind("holding")[0]
    assert estado.states == {0: "open", 1: "closed", 2: "lockout"}


@pytest.mark.parametrize("type_, value, word_order", [
    # the ends of each type's range, with scale 0.1 and offset -2
    ("int16", -3278.8, "big"), ("uint16", 6551.5, "big"),
    ("int32", -214748366.8, "big"), ("int32", -214748366.8, "little"),
    ("uint32", 429496727.5, "big"), ("uint32", 429496727.5, "little"),
    ("float32", -0.9321, "big"), ("float32", -0.9321, "little")])
@pytest.mark.parametrize("byte_order", ["big", "little"])
def test_every_type_and_order_encodes_as_pymodbus_decodes(tmp_path, type_, value, word_order,
                                                          byte_order):
    write_profile(tmp_path, [{"name": "x", "register": "holding", "address": 7,
                                     "type": type_, "word_order": word_order,
                              "byte_order": byte_order, "scale": 0.1, "offset": -2}])
    attribute = modbus_profile.load("test", tmp_path).attributes[0]
    registers = attribute.encode(value)
    assert len(registers) == attribute.size and all(0 <= r <= 0xFFFF for r in registers)
    decoded = pymodbus_decode(attribute, registers)
    assert decoded == pytest.approx(value, abs=0.05, rel=1e-6)   # within the scale's rounding
    assert attribute.served(value) == pytest.approx(decoded, rel=1e-12)


def test_word_and_byte_order_put_the_bytes_where_the_profile_says(tmp_path):
    write_profile(tmp_path, [
        {"name": "big", "register": "input", "address": 0, "type": "uint32"},
        {"name": "words", "register": "input", "address": 2, "type": "uint32",
         "word_order": "little"},
        {"name": "both", "register": "input", "address": 4, "type": "uint32",
         "word_order": "little", "byte_order": "little"}])
    big, words, both = modbus_profile.load("test", tmp_path).attributes
    assert big.encode(0x11223344) == [0x1122, 0x3344]
    assert words.encode(0x11223344) == [0x3344, 0x1122]
    assert both.encode(0x11223344) == [0x4433, 0x2211]


def test_states_and_bits_encode_their_raw_values(tmp_path):
    write_profile(tmp_path, [
        {"name": "mode", "register": "holding", "address": 0, "type": "int16",
         "states": {"-1": "fault", "3": "auto"}},
        {"name": "door", "register": "discrete", "address": 5,
         "states": {"0": "shut", "1": "open"}},
        {"name": "relay", "register": "coil", "address": 2}])
    mode, door, relay = modbus_profile.load("test", tmp_path).attributes
    assert mode.encode("fault") == [0xFFFF] and mode.served("auto") == "auto"
    assert door.encode("open") == [True] and door.served("shut") == "shut"
    assert relay.encode(1) == [True] and relay.served(False) is False
    with pytest.raises(ValueError, match="mode: 'manual' is not one of its states"):
        mode.encode("manual")


def test_a_value_beyond_its_type_is_refused_naming_the_attribute():
    ia = modbus_profile.load("osm27").attributes[0]
    assert ia.served(123.44) == 123.4
    with pytest.raises(ValueError, match="ia=7000 is out of range for uint16"):
        ia.encode(7000)
    with pytest.raises(ValueError, match="ia=-1 is out of range"):
        ia.encode(-1)


def test_the_profile_directory_comes_from_the_environment(tmp_path, monkeypatch):
    write_profile(tmp_path, [{"name": "x", "register": "coil", "address": 0}])
    monkeypatch.setenv("MODBUS_PROFILES_DIR", str(tmp_path))
    assert modbus_profile.load("test").path == tmp_path / "test.json"
    with pytest.raises(ProfileError, match=r"osm27.json: no such profile .*\['test'\]"):
        modbus_profile.load("osm27")


@pytest.mark.parametrize("name", ["../osm27", "OSM27", "", "osm27.json"])
def test_a_profile_name_is_a_plain_name(name):
    with pytest.raises(ProfileError, match="is not valid: expected lower-case letters"):
        modbus_profile.load(name)


GOOD = {"name": "x", "register": "input", "address": 0, "type": "uint16"}


@pytest.mark.parametrize("attributes, expected", [
    ([], "\"attributes\" must be a non-empty list"),
    ([dict(GOOD, register="inputs")], "attribute 'x': \"register\" must be one of"),
    ([dict(GOOD, type="uint64")], "attribute 'x': \"type\" must be one of"),
    ([dict(GOOD, type=None)], "attribute 'x': \"type\" must be one of"),
    ([{"name": "x", "register": "coil", "address": 0, "type": "uint16"}],
     "attribute 'x': a coil is a single bit"),
    ([{"name": "x", "register": "discrete", "address": 0, "byte_order": "little"}],
     "attribute 'x': a discrete is a single bit"),
    ([dict(GOOD, word_order="little")], "\"word_order\" is for 32-bit types, not uint16"),
    ([dict(GOOD, address=-1)], "attribute 'x': \"address\" must be a whole number"),
    ([dict(GOOD, address="3")], "attribute 'x': \"address\" must be a whole number"),
    ([dict(GOOD, type="float32", address=65535)], "from 0 to 65534"),
    ([dict(GOOD, word_order="middle")], "attribute 'x': \"word_order\" must be"),
    ([dict(GOOD, byte_order=1)], "attribute 'x': \"byte_order\" must be"),
    ([dict(GOOD, scale=0)], "attribute 'x': \"scale\" cannot be 0"),
    ([dict(GOOD, scale="0.1")], "attribute 'x': \"scale\" must be a number"),
    ([dict(GOOD, offset=float("nan"))], "attribute 'x': \"offset\" must be a number"),
    ([dict(GOOD, unit=5)], "attribute 'x': \"unit\" must be 1 to 32 printable characters"),
    ([dict(GOOD, unit="")], "attribute 'x': \"unit\" must be 1 to 32 printable characters"),
    ([dict(GOOD, scal=0.1)], "attribute 'x': unknown keys ['scal']"),
    ([dict(GOOD, type="float32", states={"0": "off"})], "needs an integer type"),
    ([dict(GOOD, states={"on": "off"})], "state key 'on' must be a whole number"),
    ([dict(GOOD, states={"70000": "big"})], "state key '70000' must be a whole number"),
    ([dict(GOOD, states={"0": "a", "1": "a"})], "state 'a' is given to two raw values"),
    ([dict(GOOD, states={})], "\"states\" must be an object of raw value -> state name"),
    ([dict(GOOD, states={"0": "3rd"})], "state '3rd' must start with a letter"),
    ([dict(GOOD, states={"0": "off"}, scale=1)], "\"states\" name raw values: leave out"),
    ([dict(GOOD, name="a/b")], "attribute #1: \"name\" must be a topic level"),
    ([dict(GOOD, name="status")], "attribute #1: \"name\" must be a topic level other than"),
    ([GOOD, dict(GOOD, address=1)], "attribute names used twice: ['x']"),
    ([dict(GOOD, type="int32"), dict(GOOD, name="y", address=1)],
     "attribute 'y': input address 1 overlaps 'x' (int32 at 0)"),
    (["x"], "attribute #1 must be an object"),
])
def test_a_bad_profile_is_refused_naming_file_and_attribute(tmp_path, attributes, expected):
    path = write_profile(tmp_path, attributes)
    with pytest.raises(ProfileError) as error:
        modbus_profile.load("test", tmp_path)
    assert str(error.value).startswith(f"{path}: ")
    assert expected in str(error.value)


def test_the_same_address_in_two_register_kinds_is_fine(tmp_path):
    write_profile(tmp_path, [GOOD, dict(GOOD, name="y", register="holding"),
                             {"name": "z", "register": "coil", "address": 0}])
    assert len(modbus_profile.load("test", tmp_path).attributes) == 3


@pytest.mark.parametrize("text, expected", [
    ("{", "not readable as JSON"),
    ("[]", "the top level must be an object"),
    (json.dumps({"model": "other", "attributes": [GOOD]}), "\"model\" must be 'test'"),
    (json.dumps({"model": "test", "attributes": [GOOD], "unit_id": 1}), "unknown keys"),
    (json.dumps({"attributes": [dict(GOOD, description="ok")], "description": "ok"}), None),
])
def test_the_top_level_is_checked(tmp_path, text, expected):
    (tmp_path / "test.json").write_text(text)
    if expected is None:    # ... and descriptions are welcome, a model name is optional
        assert modbus_profile.load("test", tmp_path).model == "test"
        return
    with pytest.raises(ProfileError, match=expected):
        modbus_profile.load("test", tmp_path)
