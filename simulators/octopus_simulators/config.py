"""The simulator's settings: command-line flags over environment variables over defaults."""
import argparse
import math
import os
from dataclasses import dataclass

from .windpark import TOPIC_LEVEL


@dataclass(frozen=True)
class Settings:
    kind: str
    generator_id: str
    devices: int
    interval_s: float
    bad_data_probability: float
    count: int
    mqtt_host: str
    mqtt_port: int
    mqtt_user: str
    mqtt_password: str
    client_id_prefix: str
    seed: object
    health_file: object
    verbose: bool


def _whole(low, high=None):
    """A converter for whole numbers in [low, high]."""
    def convert(text):
        value = int(text)
        if value < low or (high is not None and value > high):
            raise ValueError
        return value
    convert.expected = (f"a whole number from {low} to {high}" if high
                        else f"a whole number ≥ {low}")
    return convert


def _positive_seconds(text):
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError
    return value


_positive_seconds.expected = "a number of seconds > 0, e.g. 2 or 0.5"


def _probability(text):
    value = float(text)
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise ValueError
    return value


_probability.expected = "a probability from 0 to 1, e.g. 0.02"


def _text(text):
    if not text:
        raise ValueError
    return text


_text.expected = "a non-empty value"

KINDS = ("sensors", "windpark")


def _kind(text):
    if text not in KINDS:
        raise ValueError
    return text


_kind.expected = "one of " + ", ".join(KINDS)


def _topic_level_or_empty(text):
    # A device name is one topic level; empty means "derive it from the host name".
    if text and not TOPIC_LEVEL.match(text):
        raise ValueError
    return text


_topic_level_or_empty.expected = "one topic level (no /, +, #, not starting with $), or empty"

# name: (flag, environment variable or None, default, converter)
OPTIONS = {
    "kind": ("--kind", "SIM_KIND", "sensors", _kind),
    "generator_id": ("--generator-id", "SIM_GENERATOR_ID", "", _topic_level_or_empty),
    "devices": ("--devices", "SIM_DEVICES", "4", _whole(0)),
    "interval_s": ("--interval", "SIM_INTERVAL_S", "2", _positive_seconds),
    "bad_data_probability": ("--bad-data-probability", "SIM_BAD_DATA_PROBABILITY", "0.02",
                             _probability),
    "count": ("--count", None, "0", _whole(0)),
    "mqtt_host": ("--host", "MQTT_HOST", "127.0.0.1", _text),
    "mqtt_port": ("--port", "MQTT_PORT", "1883", _whole(1, 65535)),
    "mqtt_user": ("--user", "MQTT_SIMULATOR_USER", "octopus-simulator", _text),
    "client_id_prefix": ("--client-id-prefix", None, "octopus-sim", _text),
}

HELP = {
    "kind": "what to simulate: sensors (SIM_DEVICES of them, default) or windpark (one "
            "wind-park generator on parque/eolico/<generator id>/...) (env SIM_KIND)",
    "generator_id": "the wind-park generator's device name (env SIM_GENERATOR_ID; default "
                    "aerogenerador-<host name>, unique per compose replica)",
    "devices": "number of simulated devices (env SIM_DEVICES, default 4)",
    "interval_s": "seconds between two readings of a device (env SIM_INTERVAL_S, default 2)",
    "bad_data_probability": "chance that a reading is replaced by a malformed message "
                            "(env SIM_BAD_DATA_PROBABILITY, default 0.02)",
    "count": "stop after this many rounds of readings; 0 runs until SIGINT/SIGTERM (default)",
    "mqtt_host": "broker host (env MQTT_HOST, default 127.0.0.1)",
    "mqtt_port": "broker port (env MQTT_PORT, default 1883)",
    "mqtt_user": "broker account (env MQTT_SIMULATOR_USER, default octopus-simulator); its "
                 "password is read from MQTT_SIMULATOR_PASSWORD only, never from a flag, so "
                 "that it does not show in the process list",
    "client_id_prefix": "MQTT client ids are <prefix>-<site>-<room>-<device> "
                        "(default octopus-sim); change it to run a second fleet",
}

METAVARS = {"kind": "KIND", "generator_id": "NAME", "devices": "N", "interval_s": "SECONDS",
            "bad_data_probability": "P", "count": "ROUNDS", "mqtt_host": "HOST",
            "mqtt_port": "PORT", "mqtt_user": "USER", "client_id_prefix": "PREFIX"}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m octopus_simulators.sensors",
        description="Simulated MQTT sensors: each device has its own connection, publishes "
                    "temperatura, humedad, corriente and voltaje (QoS 1) on "
                    "<site>/<room>/<device>/<attribute> and its availability on .../status; "
                    "or, with --kind windpark, one wind-park generator (viento, potencia, "
                    "rpm, temperatura_gondola, estado).")
    for name, (flag, _env, _default, _convert) in OPTIONS.items():
        parser.add_argument(flag, dest=name, default=None, metavar=METAVARS[name],
                            help=HELP[name])
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the random values, for a reproducible run")
    parser.add_argument("--health-file", default=None, metavar="PATH",
                        help="touch this file after every round in which all devices were "
                             "connected (for a container healthcheck)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every round")
    return parser


def parse(argv=None, environ=None):
    """Settings from `argv` and `environ`; exits with a message naming any bad value."""
    environ = os.environ if environ is None else environ
    parser = build_parser()
    args = parser.parse_args(argv)
    values = {}
    for name, (flag, env, default, convert) in OPTIONS.items():
        if getattr(args, name) is not None:
            raw, source = getattr(args, name), flag
        elif env and environ.get(env, "") != "":
            raw, source = environ[env], env
        else:
            raw, source = default, f"default of {flag}"
        try:
            values[name] = convert(raw.strip())
        except ValueError:
            parser.error(f"{source}={raw!r} is not valid: expected {convert.expected}")
    password = environ.get("MQTT_SIMULATOR_PASSWORD", "")
    if not password and (values["devices"] > 0 or values["kind"] != "sensors"):
        parser.error("MQTT_SIMULATOR_PASSWORD is not set: the broker accepts no anonymous "
                     "clients (./octopus up writes it to .env; export it or source .env)")
    return Settings(mqtt_password=password, seed=args.seed, health_file=args.health_file,
                    verbose=args.verbose, **values)
