"""Simulated MQTT sensors: one connection per device, readings at QoS 1, retained availability.

    PYTHONPATH=simulators python -m octopus_simulators.sensors --devices 4 --interval 2

With `--kind windpark` (SIM_KIND) it is one wind-park generator instead
(windpark.py): parque/eolico/<generator id>/..., the same connection, bad data and payloads.

Each device sets `offline` as its retained last will on `<site>/<room>/<device>/status`,
publishes `online` (retained) whenever it connects and `offline` when stopped cleanly
(SIGINT, SIGTERM, or the end of `--count` rounds). Settings: see `--help`.
"""
import logging
import random
import socket
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from . import bad_data, config, layout, payloads, windpark
from .shutdown import stop_on_signals
from .values import Drift

log = logging.getLogger("octopus_simulators.sensors")

KEEPALIVE_S = 30
# Readings a device keeps while the broker is away (about 15 minutes of readings at the
# default interval); beyond that new readings are dropped and counted, like a real device.
QUEUE_LIMIT = 2000
STOP_TIMEOUT_S = 5.0
# Connection refusals that waiting will not cure: the account is wrong.
AUTH_REFUSALS = {134, 135}  # Bad user name or password, Not authorized (MQTT 5 numbering)


class RoomReadings:
    """What a sensor reads: each of layout.ATTRIBUTES drifting around its room's set point."""

    def __init__(self, room, rng):
        self.drifts = {a.name: Drift(*room.set_points[a.name], a.daily_swing, rng)
                       for a in layout.ATTRIBUTES}

    def next(self, t):
        """This round's (Attribute, value) pairs."""
        return [(a, self.drifts[a.name].next(t)) for a in layout.ATTRIBUTES]


class Device:
    """One simulated device: its MQTT connection, availability and what it reads (`readings`:
    RoomReadings for a sensor, windpark.Generator for a wind generator)."""

    def __init__(self, spec, settings, rng, readings=None):
        self.spec = spec
        self.settings = settings
        self.rng = rng
        self.readings = readings or RoomReadings(spec.kind, rng)
        self.connected = threading.Event()
        self.refusal = None     # set when the broker refused the account
        self.stopping = False
        self.dropped = 0        # readings refused because the local queue was full
        self._counts = threading.Condition()
        self._sent = 0          # QoS 1 messages handed to paho
        self._acked = 0         # ... and acknowledged by the broker

        self.client_id = f"{settings.client_id_prefix}-{spec.site}-{spec.room}-{spec.name}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                  protocol=mqtt.MQTTv311, clean_session=True)
        self.client.username_pw_set(settings.mqtt_user, settings.mqtt_password)
        self.client.will_set(spec.status_topic, "offline", qos=1, retain=True)
        self.client.max_queued_messages_set(QUEUE_LIMIT)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        # paho swallows exceptions raised in callbacks; its logger at least reports them.
        self.client.enable_logger(logging.getLogger("octopus_simulators.paho"))

    # -- MQTT callbacks (paho's network thread) ------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            if reason_code.value in AUTH_REFUSALS:
                self.refusal = str(reason_code)
            log.error("%s: broker refused the connection: %s", self.spec.topic, reason_code)
            return
        self._publish(self.spec.status_topic, b"online", retain=True)
        self.connected.set()
        log.info("%s connected as %s", self.spec.topic, self.client_id)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        if not self.stopping:
            log.warning("%s lost its connection (%s); reconnecting", self.spec.topic, reason_code)

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self._counts:
            self._acked += 1
            self._counts.notify_all()

    # -- the device's life ----------------------------------------------------------------------
    def start(self):
        """Connect in the background; paho keeps reconnecting until stop()."""
        self.client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port,
                                  keepalive=KEEPALIVE_S)
        self.client.loop_start()

    def _publish(self, topic, payload, retain=False):
        # Counted before publish() so that an acknowledgement can never overtake its count;
        # the lock is not held across publish(): paho calls on_publish under its own lock.
        with self._counts:
            self._sent += 1
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            with self._counts:
                self._sent -= 1
                self.dropped += 1
            return False
        return True  # queued while disconnected (MQTT_ERR_NO_CONN) is sent on reconnection

    def next_messages(self, t):
        """This round's messages: one per attribute, each possibly replaced by bad data."""
        messages = []
        for attribute, value in self.readings.next(t):
            if self.rng.random() < self.settings.bad_data_probability:
                # Malformed payloads are made from a number; a state's stand-in is 0.
                number = 0.0 if isinstance(value, str) else value
                messages.append(bad_data.bad_message(self.rng, self.spec.topic, attribute.name,
                                                     number, attribute.unit or "", t))
            else:
                messages.append(payloads.reading(
                    f"{self.spec.topic}/{attribute.name}", value, attribute.unit,
                    attribute.decimals, payloads.choose_form(self.rng), t))
        return messages

    def send(self, message):
        return self._publish(message.topic, message.payload)

    def wait_acked(self, timeout):
        """Wait until the broker acknowledged everything sent; False on timeout."""
        with self._counts:
            return self._counts.wait_for(lambda: self._acked >= self._sent, timeout)

    def stop(self, timeout=STOP_TIMEOUT_S):
        """Say `offline` (retained), let the queue drain, disconnect cleanly (no last will).

        True if the broker acknowledged everything, `offline` included.
        """
        self.stopping = True
        done = False
        if self.connected.is_set():
            self._publish(self.spec.status_topic, b"offline", retain=True)
            done = self.wait_acked(timeout)
            if not done:
                log.warning("%s: stopping with messages the broker has not acknowledged",
                            self.spec.topic)
        self.client.disconnect()
        self.client.loop_stop()
        return done


def wait_until_connected(devices, stop, settings):
    """Block until every device is connected; False if stopped or the account is refused."""
    started = time.monotonic()
    next_notice = started + 10
    while not all(d.connected.is_set() for d in devices):
        refused = next((d for d in devices if d.refusal), None)
        if refused:
            log.error("The broker at %s:%s refused account %r: %s. Check MQTT_SIMULATOR_USER "
                      "and MQTT_SIMULATOR_PASSWORD against the broker's password file.",
                      settings.mqtt_host, settings.mqtt_port, settings.mqtt_user, refused.refusal)
            return False
        if stop.wait(0.1):
            return False
        if time.monotonic() > next_notice:
            waiting = sum(not d.connected.is_set() for d in devices)
            log.warning("%d of %d devices still waiting for the broker at %s:%s (%.0f s)",
                        waiting, len(devices), settings.mqtt_host, settings.mqtt_port,
                        time.monotonic() - started)
            next_notice += 10
    return True


def build_devices(settings, seed):
    """The devices of `settings.kind`: SIM_DEVICES sensors, or one wind-park generator."""
    if settings.kind == "windpark":
        name = windpark.generator_id(settings.generator_id, socket.gethostname())
        rng = random.Random(f"{seed}:{name}")
        return [Device(windpark.spec(name), settings, rng, windpark.Generator(rng))]
    return [Device(spec, settings, random.Random(f"{seed}:{spec.index}"))
            for spec in layout.fleet(settings.devices)]


def run(settings, stop):
    """Run the fleet until `stop` is set or `settings.count` rounds are done; the exit code."""
    if settings.kind == "sensors" and settings.devices == 0:
        log.info("0 devices to simulate (SIM_DEVICES=0): nothing to do")
        return 0
    seed = settings.seed if settings.seed is not None else random.randrange(2**32)
    try:
        devices = build_devices(settings, seed)
    except ValueError as error:
        log.error("%s", error)
        return 2
    log.info("simulating %d %s devices on mqtt://%s:%s every %g s, bad data %.1f %%, seed %d",
             len(devices), settings.kind, settings.mqtt_host, settings.mqtt_port,
             settings.interval_s, 100 * settings.bad_data_probability, seed)
    for device in devices:
        device.start()
    readings = bad = rounds = 0
    try:
        if not wait_until_connected(devices, stop, settings):
            return 0 if stop.is_set() else 2
        next_round = time.monotonic()
        while not stop.is_set() and (settings.count == 0 or rounds < settings.count):
            now = time.time()
            for device in devices:
                for message in device.next_messages(now):
                    if device.send(message):
                        if message.kind in bad_data.KINDS:
                            bad += 1
                        else:
                            readings += 1
            rounds += 1
            log.debug("round %d: %d readings, %d bad messages so far", rounds, readings, bad)
            if settings.health_file and all(d.connected.is_set() for d in devices):
                Path(settings.health_file).touch()
            # A fixed schedule: a slow round does not shift every later one.
            next_round = max(next_round + settings.interval_s, time.monotonic())
            if settings.count and rounds >= settings.count:
                break
            stop.wait(max(0.0, next_round - time.monotonic()))
    finally:
        said_offline = sum(device.stop() for device in devices)
        log.info("stopped after %d rounds: %d readings and %d bad messages published, %d "
                 "dropped (queue full); %d of %d devices said offline", rounds, readings, bad,
                 sum(d.dropped for d in devices), said_offline, len(devices))
    return 0


def main(argv=None):
    settings = config.parse(argv)
    logging.basicConfig(level=logging.DEBUG if settings.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # paho logs every packet at debug level: keep only its warnings and errors.
    logging.getLogger("octopus_simulators.paho").setLevel(logging.WARNING)
    stop = stop_on_signals(log)
    return run(settings, stop)


if __name__ == "__main__":
    sys.exit(main())
