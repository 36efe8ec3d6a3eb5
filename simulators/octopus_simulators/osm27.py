"""Simulated NOJA OSM27 reclosers: one Modbus TCP server per device, on consecutive ports.

    PYTHONPATH=simulators python -m octopus_simulators.osm27 --devices 3 --port 5020

serves devices 1, 2 and 3 on ports 5020, 5021 and 5022 until SIGINT or SIGTERM. The map is
modbus/profiles/<profile>.json; the values come from `grid.Recloser` and change once a
second, as a real controller's measurements do, so that readings do not depend on how often
a client polls and a seeded run is the same whoever reads it. Settings: see `--help`.

In tests, `Osm27Fleet` runs the same servers on an event loop of its own thread.
"""
import argparse
import asyncio
import logging
import os
import random
import sys
import threading
import time

from . import config, modbus_profile
from .shutdown import stop_on_signals
from .grid import MEASUREMENTS, STATES, FeederSettings, Recloser
from .modbus_server import FAULTS, DeviceServer

log = logging.getLogger("octopus_simulators.osm27")

TICK_S = 1.0
CALL_TIMEOUT_S = 10.0


class Osm27Fleet:
    """`count` simulated reclosers, device i on ports[i] (0-based here; 1-based on the CLI).

    Every method may be called from any thread: the work runs on the fleet's own loop.
    """

    def __init__(self, count=1, host="127.0.0.1", ports=None, base_port=5020, seed=None,
                 profile="osm27", profiles_dir=None, settings=FeederSettings(), tz=None,
                 clock=time.time, tick_s=TICK_S):
        self.profile = modbus_profile.load(profile, profiles_dir)
        ports = list(ports) if ports is not None else [base_port + i for i in range(count)]
        if len(ports) != count:
            raise ValueError(f"{count} devices but {len(ports)} ports")
        self.seed = seed if seed is not None else random.randrange(2**32)
        self.clock, self.tick_s = clock, tick_s
        self.models = [Recloser(random.Random(f"{self.seed}:{i}"), settings, tz)
                       for i in range(count)]
        self.devices = [DeviceServer(f"{self.profile.model}-{i + 1}", self.profile, host, port,
                                     random.Random(f"{self.seed}:{i}:garbage"))
                        for i, port in enumerate(ports)]
        for attribute in self.profile.attributes:
            if attribute.name not in MEASUREMENTS:
                raise modbus_profile.ProfileError(
                    f"{self.profile.path}: attribute {attribute.name!r} is not measured by "
                    f"the recloser model (it measures {', '.join(MEASUREMENTS)})")
        self._serving = [True] * count       # what start() opens
        self._held = False
        self._loop = self._thread = self._ticker = None

    # -- life -------------------------------------------------------------------------------
    def start(self):
        """Listen on every port (in a background thread); returns once all are listening."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="osm27-fleet",
                                        daemon=True)
        self._thread.start()
        try:
            self._call(self._start())
        except BaseException:
            self.stop()
            raise
        return self

    async def _start(self):
        now = self.clock()
        for index, device in enumerate(self.devices):
            self._update(index, now)
            if self._serving[index]:
                await device.start()
            else:
                log.info("%s not started (%s:%s refuses connections)", device.name,
                         device.host, device.port)
        self._ticker = asyncio.create_task(self._tick())

    def stop(self):
        """Close every device and end the background thread."""
        if self._running:
            try:
                self._call(self._stop())
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(CALL_TIMEOUT_S)
        if self._loop:
            self._loop.close()
        self._loop = self._thread = None

    async def _stop(self):
        if self._ticker:
            self._ticker.cancel()
        for device in self.devices:
            await device.stop()

    async def _tick(self):
        # A fixed schedule: a slow update does not shift the later ones.
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            next_tick = max(next_tick + self.tick_s, loop.time())
            await asyncio.sleep(next_tick - loop.time())
            if not self._held:
                now = self.clock()
                for index in range(len(self.devices)):
                    self._update(index, now)

    def _update(self, index, now):
        model, device = self.models[index], self.devices[index]
        before = model.state
        device.update(model.step(now))
        if model.state != before:
            log.info("%s: recloser %s (was %s)", device.name, model.state, before)

    # -- control, from any thread; 0-based device index -------------------------------------
    @property
    def ports(self):
        """The port of each device (the real one once started, when asked for port 0)."""
        return [device.port for device in self.devices]

    def set_fault(self, index, fault):
        """Device `index` answers with `fault`: none, no-answer, exception, disconnect, garbage."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}: expected one of {', '.join(FAULTS)}")
        self._in_loop(lambda: self.devices[index].set_fault(fault))

    def stop_device(self, index):
        """Close the device's socket and connections: connecting is refused until start_device."""
        self._serving[index] = False
        if self._running:
            self._call(self.devices[index].stop())

    def start_device(self, index):
        """Serve device `index` again, on the same port."""
        self._serving[index] = True
        if self._running:
            self._call(self.devices[index].start())

    def hold(self, held=True):
        """Freeze (or release) the served values, so that a reader can compare them."""
        self._in_loop(lambda: setattr(self, "_held", bool(held)))

    def set_state(self, index, state):
        """Force the recloser open (a trip: it recloses after the dead time), into lockout
        (open until closed or reset) or closed. Served at once, even while held."""
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}: expected one of {', '.join(STATES)}")

        def force():
            model, now = self.models[index], self.clock()
            {"open": lambda: model.trip(now), "lockout": lambda: model.lockout(now),
             "closed": model.close}[state]()
            self._update(index, now)
        self._in_loop(force)

    def values(self, index):
        """The physical values device `index` serves, e.g. {"ia": 123.4, "estado": "closed"}."""
        return self._in_loop(lambda: dict(self.devices[index].values))

    def registers(self, index):
        """The raw blocks device `index` serves: {kind: (first address, [registers or bits])}."""
        return self._in_loop(lambda: {kind: (first, list(block)) for kind, (first, block)
                                      in self.devices[index].blocks.items()})

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def _running(self):
        return self._loop is not None and self._loop.is_running()

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(CALL_TIMEOUT_S)

    def _in_loop(self, function):
        """function() run on the fleet's loop, or right here while it is not running."""
        if not self._running:
            return function()

        async def call():
            return function()
        return self._call(call())


# name: (flag, environment variable, default, converter)
OPTIONS = {
    "devices": ("--devices", "MODBUS_SIM_DEVICES", "1", config._whole(1, 1000)),
    "port": ("--port", "MODBUS_SIM_PORT", "5020", config._whole(1, 65535)),
    "host": ("--host", "MODBUS_SIM_HOST", "127.0.0.1", config._text),
    "profile": ("--profile", "MODBUS_SIM_PROFILE", "osm27", config._text),
    "mean_trip_interval_s": ("--mean-trip-interval", "MODBUS_SIM_MEAN_TRIP_INTERVAL_S",
                             str(int(FeederSettings.mean_time_between_trips_s)),
                             config._positive_seconds),
}
HELP = {
    "devices": "number of devices, on consecutive ports (env MODBUS_SIM_DEVICES, default 1)",
    "port": "port of device 1 (env MODBUS_SIM_PORT, default 5020)",
    "host": "address to listen on (env MODBUS_SIM_HOST, default 127.0.0.1)",
    "profile": "register map: <MODBUS_PROFILES_DIR>/<profile>.json (env MODBUS_SIM_PROFILE, "
               "default osm27; MODBUS_PROFILES_DIR defaults to the repository's "
               "modbus/profiles)",
    "mean_trip_interval_s": "mean seconds between two trips of a device (env "
                            "MODBUS_SIM_MEAN_TRIP_INTERVAL_S, default 21600: six hours)",
}

METAVARS = {"devices": "N", "port": "PORT", "host": "HOST", "profile": "NAME",
            "mean_trip_interval_s": "SECONDS"}


def parse(argv=None, environ=None):
    """Settings from `argv` over `environ` over defaults; exits naming any bad value."""
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="python -m octopus_simulators.osm27",
        description="Simulated OSM27 reclosers: one Modbus TCP server per device, on "
                    "consecutive ports, answering any unit id.")
    for name, (flag, _env, _default, _convert) in OPTIONS.items():
        parser.add_argument(flag, dest=name, metavar=METAVARS[name], help=HELP[name])
    parser.add_argument("--seed", type=int, help="seed of the values, for a reproducible run")
    parser.add_argument("--fault", action="append", default=[], metavar="N=MODE",
                        help="device N (1-based: device 1 is on --port) starts with a fault: "
                             f"{', '.join(FAULTS[1:])}, or down (not listening); repeatable")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    for name, (flag, env, default, convert) in OPTIONS.items():
        raw, source = ((getattr(args, name), flag) if getattr(args, name) is not None else
                       (environ[env], env) if environ.get(env, "") != "" else
                       (default, f"default of {flag}"))
        try:
            setattr(args, name, convert(raw.strip()))
        except ValueError:
            parser.error(f"{source}={raw!r} is not valid: expected {convert.expected}")
    if args.port + args.devices - 1 > 65535:
        parser.error(f"{args.devices} devices from port {args.port} go past port 65535")
    faults = {}
    for text in args.fault:
        number, _, mode = text.partition("=")
        if not number.isdigit() or not 1 <= int(number) <= args.devices or \
                mode not in FAULTS + ("down",):
            parser.error(f"--fault {text!r} is not valid: expected N=MODE with N from 1 to "
                         f"{args.devices} and MODE one of {', '.join(FAULTS + ('down',))}")
        faults[int(number) - 1] = mode
    args.faults = faults
    return args


def main(argv=None):
    settings = parse(argv)
    logging.basicConfig(level=logging.DEBUG if settings.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.WARNING)  # it logs each packet at debug
    try:
        fleet = Osm27Fleet(settings.devices, settings.host, base_port=settings.port,
                           seed=settings.seed, profile=settings.profile,
                           settings=FeederSettings(
                               mean_time_between_trips_s=settings.mean_trip_interval_s))
    except modbus_profile.ProfileError as exc:
        log.error("%s", exc)
        return 2
    for index, fault in settings.faults.items():
        if fault == "down":
            fleet.stop_device(index)
        else:
            fleet.set_fault(index, fault)
    stop = stop_on_signals(log)
    try:
        fleet.start()
    except OSError as exc:
        log.error("%s", exc)
        return 1
    log.info("%d %s devices on %s, ports %s; seed %d", len(fleet.devices), fleet.profile.model,
             settings.host, ", ".join(map(str, fleet.ports)), fleet.seed)
    while not stop.wait(1.0):
        pass
    fleet.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
