"""Where the simulated devices live (site / room / device) and what each one measures."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Attribute:
    """A measured quantity: its topic level, unit, decimals sent, and how it moves."""
    name: str
    unit: str
    decimals: int
    # Share of the room's spread that the daily cycle swings by (negative: opposite phase,
    # e.g. relative humidity falls when the temperature rises).
    daily_swing: float


ATTRIBUTES = (
    Attribute("temperatura", "°C", 2, 0.5),
    Attribute("humedad", "%", 1, -0.4),
    Attribute("corriente", "A", 2, 0.3),
    Attribute("voltaje", "V", 1, -0.1),
)


@dataclass(frozen=True)
class Room:
    """A kind of place, the stem of its devices' names, and its (set point, spread) per attribute.

    A device's readings stay within set point ± spread.
    """
    site: str
    room: str
    device_stem: str
    set_points: dict


# Devices are dealt to these rooms in turn, so the first device is always
# oficina/servidores/servidor1 and every room gets one before any gets a second.
ROOMS = (
    Room("oficina", "servidores", "servidor",
         {"temperatura": (26.0, 4.0), "humedad": (40.0, 10.0),
          "corriente": (6.0, 3.0), "voltaje": (230.0, 8.0)}),
    Room("oficina", "sala", "sensor",
         {"temperatura": (22.0, 3.0), "humedad": (45.0, 12.0),
          "corriente": (1.5, 1.0), "voltaje": (230.0, 8.0)}),
    Room("planta", "produccion", "maquina",
         {"temperatura": (31.0, 6.0), "humedad": (55.0, 15.0),
          "corriente": (18.0, 10.0), "voltaje": (400.0, 15.0)}),
    Room("planta", "almacen", "sensor",
         {"temperatura": (18.0, 6.0), "humedad": (60.0, 15.0),
          "corriente": (0.8, 0.5), "voltaje": (230.0, 8.0)}),
)


@dataclass(frozen=True)
class DeviceSpec:
    """One simulated device: its place, name and the room it behaves like."""
    index: int
    site: str
    room: str
    name: str
    kind: Room

    @property
    def topic(self):
        """The device's topic prefix, `<site>/<room>/<device>`."""
        return f"{self.site}/{self.room}/{self.name}"

    @property
    def status_topic(self):
        """Its retained availability topic (also its last will)."""
        return f"{self.topic}/status"


def fleet(count):
    """The first `count` devices, dealt round-robin over ROOMS and numbered per room from 1."""
    devices = []
    for index in range(count):
        kind = ROOMS[index % len(ROOMS)]
        number = index // len(ROOMS) + 1
        devices.append(DeviceSpec(index, kind.site, kind.room, f"{kind.device_stem}{number}", kind))
    return devices
