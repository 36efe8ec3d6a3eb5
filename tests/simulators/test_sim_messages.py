"""What the simulators publish: good readings are accepted, bad data is always a reject."""
import collections
import json
import random
from datetime import datetime

import pytest

from octopus_simulators import bad_data, layout, payloads
from octopus_simulators.config import parse
from octopus_simulators.sensors import Device
from tests.simulators.sim_contract import classify

T = 1_795_000_000.125
DEVICE = "oficina/servidores/servidor1"


@pytest.mark.parametrize("value, decimals, text", [
    (23.456, 2, "23.46"), (23.5, 2, "23.5"), (-4.0, 1, "-4"), (0.001, 2, "0"),
    (-0.001, 2, "0"), (230.0, 1, "230"), (1e3, 0, "1000"),
])
def test_numbers_are_short_decimal_text(value, decimals, text):
    assert payloads.format_number(value, decimals) == text


@pytest.mark.parametrize("form", payloads.FORMS)
def test_every_reading_form_is_a_valid_measurement(form):
    message = payloads.reading(f"{DEVICE}/temperatura", 23.456, "°C", 2, form, T)
    assert classify(message.topic, message.payload) == ("measurement", None)
    assert message.kind == form
    if form == "bare":
        assert message.payload == b"23.46"
        return
    body = json.loads(message.payload)
    assert body["value"] == 23.46 and body["unit"] == "°C"
    if form == "json_ts_iso":
        assert body["ts"] == "2026-11-18T11:06:40.125Z"
        assert datetime.fromisoformat(body["ts"]).timestamp() == pytest.approx(T, abs=0.001)
    elif form == "json_ts_ms":
        assert body["ts"] == 1_795_000_000_125
    else:
        assert "ts" not in body


def test_both_bare_and_json_forms_are_used():
    rng = random.Random(3)
    counts = collections.Counter(payloads.choose_form(rng) for _ in range(2000))
    assert set(counts) == set(payloads.FORMS)
    assert counts["bare"] > 700 and counts["json"] > 400


@pytest.mark.parametrize("kind", bad_data.KINDS)
def test_every_kind_of_bad_data_is_a_reject(kind):
    rng = random.Random(kind)
    reasons = set()
    for spec in layout.fleet(4):
        for attribute in layout.ATTRIBUTES:
            for value in (-3.25, 0.0, 0.5, 23.456, 230.0, 404.3):
                message = bad_data.bad_message(rng, spec.topic, attribute.name, value,
                                               attribute.unit, T, kind=kind)
                category, reason = classify(message.topic, message.payload)
                assert category == "reject", (kind, message)
                assert message.kind == kind
                # Publishable, and never touching the device's real availability topic.
                assert not set(message.topic) & set("+#") and "\0" not in message.topic
                assert not message.topic.endswith("/status")
                assert not message.topic.startswith("octopus/")
                reasons.add(reason)
    assert reasons, kind


def test_bad_data_picks_every_kind_at_random():
    rng = random.Random(5)
    kinds = {bad_data.bad_message(rng, DEVICE, "humedad", 40.0, "%", T).kind
             for _ in range(500)}
    assert kinds == set(bad_data.KINDS)


def test_unknown_bad_data_kind_is_refused():
    with pytest.raises(ValueError, match="unknown bad-data kind"):
        bad_data.bad_message(random.Random(), DEVICE, "humedad", 40.0, "%", T, kind="typo")


def test_bare_nan_is_refused_not_taken_for_a_state_string():
    """`NaN` looks like a state string (a letter, then letters) but the contract refuses it."""
    assert classify(f"{DEVICE}/temperatura", b"NaN")[0] == "reject"
    assert classify(f"{DEVICE}/temperatura", b"open") == ("measurement", None)


def _device(probability, index=0):
    env = {"MQTT_SIMULATOR_PASSWORD": "x", "SIM_BAD_DATA_PROBABILITY": str(probability)}
    settings = parse([], env)
    return Device(layout.fleet(index + 1)[index], settings, random.Random(11))


def test_a_device_round_is_one_reading_per_attribute_on_its_topics():
    device = _device(0.0, index=2)
    names = [a.name for a in layout.ATTRIBUTES]
    for round_ in range(50):
        messages = device.next_messages(T + 2 * round_)
        assert [m.topic for m in messages] == [f"planta/produccion/maquina1/{n}" for n in names]
        assert all(classify(m.topic, m.payload)[0] == "measurement" for m in messages)


def test_a_device_with_bad_data_probability_one_sends_only_rejects():
    device = _device(1.0)
    messages = [m for r in range(50) for m in device.next_messages(T + r)]
    assert all(classify(m.topic, m.payload)[0] == "reject" for m in messages)
    assert {m.kind for m in messages} == set(bad_data.KINDS)
