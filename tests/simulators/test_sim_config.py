"""The simulator's settings: flags over environment over defaults, bad values named."""
import pytest

from octopus_simulators.config import parse

ENV = {"MQTT_SIMULATOR_PASSWORD": "secret"}


def test_defaults_match_env_example():
    s = parse([], ENV)
    assert (s.devices, s.interval_s, s.bad_data_probability, s.count) == (4, 2.0, 0.02, 0)
    assert (s.mqtt_host, s.mqtt_port, s.mqtt_user) == ("127.0.0.1", 1883, "octopus-simulator")
    assert s.mqtt_password == "secret"


def test_environment_is_read():
    env = dict(ENV, SIM_DEVICES="9", SIM_INTERVAL_S="0.5", SIM_BAD_DATA_PROBABILITY="0.1",
               MQTT_HOST="mosquitto", MQTT_PORT="11883", MQTT_SIMULATOR_USER="devices")
    s = parse([], env)
    assert (s.devices, s.interval_s, s.bad_data_probability) == (9, 0.5, 0.1)
    assert (s.mqtt_host, s.mqtt_port, s.mqtt_user) == ("mosquitto", 11883, "devices")


def test_flags_override_the_environment():
    env = dict(ENV, SIM_DEVICES="9", SIM_INTERVAL_S="5", MQTT_PORT="11883")
    s = parse(["--devices", "2", "--interval", "0.1", "--port", "57001", "--count", "3",
               "--bad-data-probability", "1", "--seed", "4"], env)
    assert (s.devices, s.interval_s, s.mqtt_port, s.count) == (2, 0.1, 57001, 3)
    assert (s.bad_data_probability, s.seed) == (1.0, 4)


def test_empty_environment_values_fall_back_to_defaults():
    s = parse([], dict(ENV, SIM_DEVICES="", MQTT_PORT=""))
    assert (s.devices, s.mqtt_port) == (4, 1883)


@pytest.mark.parametrize("argv, env, named", [
    (["--devices", "-1"], {}, "--devices='-1'"),
    ([], {"SIM_DEVICES": "four"}, "SIM_DEVICES='four'"),
    ([], {"SIM_INTERVAL_S": "0"}, "SIM_INTERVAL_S='0'"),
    (["--interval", "nan"], {}, "--interval='nan'"),
    ([], {"SIM_BAD_DATA_PROBABILITY": "2"}, "SIM_BAD_DATA_PROBABILITY='2'"),
    ([], {"MQTT_PORT": "70000"}, "MQTT_PORT='70000'"),
])
def test_a_bad_value_stops_with_a_message_naming_it(argv, env, named, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(argv, dict(ENV, **env))
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err


def test_the_password_is_required_unless_there_is_nothing_to_simulate(capsys):
    with pytest.raises(SystemExit):
        parse([], {})
    assert "MQTT_SIMULATOR_PASSWORD is not set" in capsys.readouterr().err
    assert parse(["--devices", "0"], {}).devices == 0
