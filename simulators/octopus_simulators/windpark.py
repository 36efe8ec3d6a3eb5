"""A wind-park generator: wind, the power it makes, rotor speed, nacelle heat and its state.

    PYTHONPATH=simulators python -m octopus_simulators.sensors --kind windpark

One process is one generator on `parque/eolico/<generator id>/<attribute>`; it is published
by sensors.Device (connection, last will, bad data, payload forms, health file), this module
only says what the generator reads. Compose runs ten replicas of it, each named after its
container's host name.
"""
import re

from .layout import Attribute, DeviceSpec
from .values import Drift

SITE, ROOM = "parque", "eolico"
ID_PREFIX = "aerogenerador"

# The power curve of a typical 2 MW turbine.
CUT_IN_MS = 3.0       # below this the rotor is not worth turning
RATED_MS = 12.0       # from here on the output is held at the rated power
CUT_OUT_MS = 25.0     # from here on the turbine stops to protect itself
RATED_KW = 2000.0
# Rotor speed from cut-in to rated wind (variable-speed turbine), then held.
MIN_RPM, RATED_RPM = 9.0, 16.0

ATTRIBUTES = (  # daily_swing is not used: each value is computed below
    Attribute("viento", "m/s", 1, 0.0),
    Attribute("potencia", "kW", 1, 0.0),
    Attribute("rpm", "rpm", 1, 0.0),
    Attribute("temperatura_gondola", "°C", 1, 0.0),
    Attribute("estado", None, 0, 0.0),
)
PRODUCING, STOPPED = "produciendo", "parado"

# A topic level: no separators or wildcards, not a $-topic, not empty.
TOPIC_LEVEL = re.compile(r"^[^/+#$\0][^/+#\0]*$")


def power_kw(wind_ms):
    """The power (kW) made by a wind of `wind_ms`: 0 below cut-in and from cut-out on, rated
    from RATED_MS, and in between growing with the cube of the wind, as its energy does."""
    if wind_ms < CUT_IN_MS or wind_ms >= CUT_OUT_MS:
        return 0.0
    if wind_ms >= RATED_MS:
        return RATED_KW
    share = (wind_ms ** 3 - CUT_IN_MS ** 3) / (RATED_MS ** 3 - CUT_IN_MS ** 3)
    return RATED_KW * share


def rotor_rpm(wind_ms):
    """The rotor's speed: stopped outside the producing range, MIN_RPM … RATED_RPM inside."""
    if power_kw(wind_ms) == 0.0:
        return 0.0
    share = min(1.0, (wind_ms - CUT_IN_MS) / (RATED_MS - CUT_IN_MS))
    return MIN_RPM + share * (RATED_RPM - MIN_RPM)


def generator_id(configured, hostname):
    """The generator's device name: `configured` (SIM_GENERATOR_ID) if set, else
    aerogenerador-<host name>; Compose gives each replica its own host name."""
    if configured:
        if not TOPIC_LEVEL.match(configured):
            raise ValueError(f"generator id {configured!r} is not a topic level")
        return configured
    # The first label, lower case, only letters, digits and dashes: a clean topic level.
    label = re.sub(r"[^a-z0-9-]+", "-", hostname.split(".")[0].lower()).strip("-")
    if not label:
        raise ValueError(f"host name {hostname!r} gives no generator id; set SIM_GENERATOR_ID")
    return f"{ID_PREFIX}-{label}"


def spec(name):
    """The generator as a device: parque/eolico/<name>."""
    return DeviceSpec(0, SITE, ROOM, name, kind=None)


class Generator:
    """What one generator reads, round after round: `next(t)` gives (Attribute, value) pairs."""

    def __init__(self, rng):
        # Wind 0 … 18 m/s around 9, calm at night (parado) and strong in the afternoon (rated
        # power); the nacelle 22 … 38 °C plus up to 8 °C at full load.
        self.wind = Drift(9.0, 9.0, 0.8, rng)
        self.nacelle = Drift(30.0, 8.0, 0.5, rng)

    def next(self, t):
        wind = self.wind.next(t)
        power = power_kw(wind)
        heat = self.nacelle.next(t) + 8.0 * power / RATED_KW
        values = (wind, power, rotor_rpm(wind), heat, PRODUCING if power > 0 else STOPPED)
        return list(zip(ATTRIBUTES, values))
