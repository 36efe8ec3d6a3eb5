"""The wind-park generator: its power curve, its name per replica, and what it publishes."""
import collections
import random

import pytest

from octopus_simulators import bad_data, windpark
from octopus_simulators.config import parse
from octopus_simulators.sensors import Device, build_devices
from tests.simulators.sim_contract import classify
from tests.simulators.test_sim_broker import Watcher, finish, readings_per_topic, start_simulator

T = 1_795_000_000.125
ENV = {"MQTT_SIMULATOR_PASSWORD": "x", "SIM_KIND": "windpark"}
NAMES = [a.name for a in windpark.ATTRIBUTES]


@pytest.mark.parametrize("wind, power", [
    (0.0, 0.0), (2.9, 0.0),                  # below cut-in: nothing
    (3.0, 0.0),                              # cut-in: the curve starts at zero
    (12.0, 2000.0), (18.0, 2000.0), (24.9, 2000.0),  # rated from 12 m/s
    (25.0, 0.0), (30.0, 0.0),                # cut-out: stopped to protect itself
])
def test_power_curve_points(wind, power):
    assert windpark.power_kw(wind) == pytest.approx(power)


def test_power_grows_with_the_wind_between_cut_in_and_rated():
    winds = [3.0 + 0.1 * i for i in range(91)]  # 3 … 12 m/s
    powers = [windpark.power_kw(w) for w in winds]
    assert all(a < b for a, b in zip(powers, powers[1:]))
    # the cube of the wind: half the rated wind gives far less than half the power
    assert 0 < windpark.power_kw(7.5) < 0.3 * windpark.RATED_KW


def test_rotor_turns_only_while_producing():
    assert windpark.rotor_rpm(2.0) == windpark.rotor_rpm(26.0) == 0.0
    assert windpark.rotor_rpm(3.5) >= windpark.MIN_RPM
    assert windpark.rotor_rpm(15.0) == windpark.RATED_RPM


@pytest.mark.parametrize("configured, hostname, name", [
    ("", "3f2a9c1b7d4e", "aerogenerador-3f2a9c1b7d4e"),  # a replica's container id
    ("", "Octopus-Windpark-3.lan", "aerogenerador-octopus-windpark-3"),
    ("", "host_name", "aerogenerador-host-name"),
    ("ag07", "3f2a9c1b7d4e", "ag07"),  # SIM_GENERATOR_ID wins
])
def test_generator_id(configured, hostname, name):
    assert windpark.generator_id(configured, hostname) == name


def test_each_replica_is_a_different_generator(monkeypatch):
    settings = parse(["--seed", "1"], ENV)
    names = set()
    for hostname in ("a1b2c3d4e5f6", "0f9e8d7c6b5a", "windpark-3"):
        monkeypatch.setattr("socket.gethostname", lambda: hostname)
        (device,) = build_devices(settings, 1)
        names.add(device.spec.topic)
        assert device.spec.status_topic == f"{device.spec.topic}/status"
    assert names == {"parque/eolico/aerogenerador-a1b2c3d4e5f6",
                     "parque/eolico/aerogenerador-0f9e8d7c6b5a",
                     "parque/eolico/aerogenerador-windpark-3"}


@pytest.mark.parametrize("env, named", [
    ({"SIM_GENERATOR_ID": "ag/1"}, "SIM_GENERATOR_ID='ag/1'"),
    ({"SIM_GENERATOR_ID": "$ag"}, "SIM_GENERATOR_ID='$ag'"),
    ({"SIM_KIND": "windfarm"}, "SIM_KIND='windfarm'"),
])
def test_a_bad_setting_stops_with_a_message_naming_it(env, named, capsys):
    with pytest.raises(SystemExit):
        parse([], dict(ENV, **env))
    assert named in capsys.readouterr().err


def _generator(probability, seed=11):
    settings = parse(["--generator-id", "ag01"],
                     dict(ENV, SIM_BAD_DATA_PROBABILITY=str(probability)))
    rng = random.Random(seed)
    return Device(windpark.spec("ag01"), settings, rng, windpark.Generator(rng))


def test_a_round_is_every_attribute_on_the_generators_topics():
    device = _generator(0.0)
    states = set()
    for round_ in range(500):  # every 5 minutes for 42 hours: calm nights, windy afternoons
        messages = device.next_messages(T + 300 * round_)
        assert [m.topic for m in messages] == [f"parque/eolico/ag01/{n}" for n in NAMES]
        assert all(classify(m.topic, m.payload) == ("measurement", None) for m in messages)
        estado = messages[NAMES.index("estado")]
        if estado.kind == "bare":  # a state string, sent as it is
            states.add(estado.payload.decode())
    assert states == {windpark.PRODUCING, windpark.STOPPED}


def test_power_follows_the_wind_and_the_state_the_power():
    generator = windpark.Generator(random.Random(4))
    for round_ in range(1000):
        values = {a.name: v for a, v in generator.next(T + 300 * round_)}
        assert 0.0 <= values["viento"] <= 18.0
        assert values["potencia"] == windpark.power_kw(values["viento"])
        producing = values["potencia"] > 0
        assert values["estado"] == (windpark.PRODUCING if producing else windpark.STOPPED)
        assert (values["rpm"] > 0) == producing


@pytest.mark.parametrize("probability", [0.0, 0.05, 0.3, 1.0])
def test_bad_data_happens_at_the_configured_probability(probability):
    device = _generator(probability)
    messages = [m for r in range(2000) for m in device.next_messages(T + 2 * r)]
    kinds = collections.Counter("bad" if m.kind in bad_data.KINDS else "good" for m in messages)
    n = len(messages)  # 10,000: four standard deviations of a binomial are at most 0.02
    assert abs(kinds["bad"] / n - probability) <= 4 * (probability * (1 - probability) / n) ** 0.5
    for message in messages:
        expected = "reject" if message.kind in bad_data.KINDS else "measurement"
        assert classify(message.topic, message.payload)[0] == expected, message


def test_a_generator_publishes_through_the_broker_and_says_offline(broker):
    """Against the real Mosquitto: its five attributes arrive, then `offline` (retained)."""
    watcher = Watcher(broker, topics=["parque/eolico/#"])
    sim = start_simulator(broker, "--kind", "windpark", "--generator-id", "ag-test",
                          "--interval", "0.1", "--bad-data-probability", "0", "--count", "5")
    code, output = finish(sim)
    assert code == 0, output
    expected = {f"parque/eolico/ag-test/{n}" for n in NAMES}
    watcher.wait_for(lambda m: all(readings_per_topic(m).get(t, 0) == 5 for t in expected),
                     5, "5 readings on each attribute")
    watcher.wait_for(lambda m: m[-1][:2] == ("parque/eolico/ag-test/status", b"offline"), 5,
                     "offline last")
    watcher.close()
    assert "1 of 1 devices said offline" in output
