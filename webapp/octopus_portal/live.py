"""The live view's feed: an MQTT client on `octopus/live` and `octopus/alerts/#` whose
messages go to Socket.IO clients; it also publishes what the portal sends to MQTT, and
hears the platform's statistics and the broker's $SYS figures (platform_stats.py).

Each portal process subscribes on its own (not a shared subscription), so every process
gets every message and forwards it to the browsers connected to it: more portal processes
need no message queue between them.
"""
import json
import logging
import os
import secrets
import socket
import threading
import time

import paho.mqtt.client as mqtt
from flask import current_app
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, join_room

from . import enrolment, platform_stats
from .extensions import socketio

TOPIC = "octopus/live"
EVENT = "live"  # the Socket.IO event a browser receives
ROOM = "live"   # every logged-in browser joins it; only they receive EVENT
USER_ROOM = "user:{}"  # and its user's own: users.end_live_streams() ends them by user
EXTENSION = "octopus_live"  # key in app.extensions

# Alert states (doc/alerts.md): octopus/alerts/<rule_id>/<site>/<room>/<device>/<attribute>,
# retained, one JSON object per alert. They reach browsers as ALERT_EVENT on the namespace
# ALERTS_NAMESPACE (same room): a page that also follows octopus/live multiplexes both
# namespaces over its one Socket.IO connection instead of opening a second.
ALERTS_TOPIC = "octopus/alerts/#"
ALERTS_PREFIX = "octopus/alerts/"
ALERT_EVENT = "alert"
ALERTS_NAMESPACE = "/alerts"
# the rule_id level of an alert whose rule was deleted: published there, never retained
DELETED_RULE = "deleted"
ALERT_FIELDS = ("id", "rule_id", "rule_name", "site", "room", "device", "attribute",
                "severity", "message", "state", "raised_at", "raised_value", "acked_at",
                "acked_by", "cleared_at", "cleared_value", "flapping")
ALERT_STATES = ("active", "acknowledged", "cleared")

log = logging.getLogger(__name__)


def parse(payload):
    """The message as a dict, or None if it is not a JSON object as topics.md describes."""
    try:
        message = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(message, dict):
        return None
    if not all(isinstance(message.get(key, []), list) for key in ("readings", "statuses")):
        return None
    return message


def parse_alert(payload):
    """An alert state as a dict of ALERT_FIELDS, or None if it is not one."""
    try:
        alert = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(alert, dict) or alert.get("state") not in ALERT_STATES:
        return None
    # Only the platform's own "database unreachable" alert may come without an id: Node-RED
    # raises it while it cannot store it (doc/alerts.md).
    platform_alert = (alert.get("id") is None and alert.get("rule_id") is None
                      and (alert.get("site"), alert.get("room")) == ("octopus", "platform"))
    if not platform_alert and (not isinstance(alert.get("id"), int) or isinstance(alert["id"], bool)):
        return None
    if not all(isinstance(alert.get(key), str) and alert[key]
               for key in ("site", "room", "device", "attribute")):
        return None
    return {key: alert.get(key) for key in ALERT_FIELDS}


def alert_topic(alert):
    """The topic of an alert's state: octopus/alerts/<rule_id>/<site>/<room>/<device>/<attr>."""
    rule = DELETED_RULE if alert["rule_id"] is None else str(alert["rule_id"])
    return "/".join((ALERTS_PREFIX + rule, alert["site"], alert["room"], alert["device"],
                     alert["attribute"]))


class LiveBridge:
    """Owns one paho-mqtt client subscribed to TOPIC and ALERTS_TOPIC; `emit(event, data)`
    forwards a message. With `on_enrolment(client, message)` it also takes the devices'
    enrolment requests (enrolment.py), with `on_platform(topic, payload)` the statistics of
    platform_stats.py."""

    def __init__(self, host, port, username, password, emit, on_enrolment=None,
                 on_platform=None):
        self.host, self.port = host, port
        self.emit = emit
        self.on_enrolment = on_enrolment
        self.topics = [(TOPIC, 0), (ALERTS_TOPIC, 1)]
        if on_enrolment:
            self.topics.append((enrolment.REQUEST_TOPIC, 1))
        self.on_platform = on_platform
        if on_platform:
            self.topics += [(platform_stats.STATS_TOPIC, 0), (platform_stats.SYS_TOPIC, 0)]
        self.subscribed = threading.Event()  # set while the subscription is in place
        self.started = False
        client_id = f"octopus-portal-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=True)  # nothing to replay: the page catches up
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self.on_connect
        self.client.on_disconnect = self.on_disconnect
        self.client.on_subscribe = self.on_subscribe
        self.client.on_message = self.on_message

    def start(self):
        """Connect in the background; paho's thread retries until the broker answers."""
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        self.started = True
        log.info("connecting to MQTT %s:%s for %s", self.host, self.port, TOPIC)

    def stop(self):
        """Disconnect and end paho's thread."""
        if not self.started:
            return
        self.client.disconnect()
        self.client.loop_stop()
        self.started = False
        self.subscribed.clear()

    def on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("the MQTT broker at %s:%s refused the portal (%s); check "
                      "MQTT_PORTAL_USER and MQTT_PORTAL_PASSWORD. Retrying.",
                      self.host, self.port, reason_code)
            return
        # Subscribing here, not once in start(), renews the subscription after a reconnect
        # (and brings every retained alert state again: pages apply them idempotently).
        client.subscribe(self.topics)

    def on_subscribe(self, client, userdata, mid, reason_codes, properties):
        refused = [topic for (topic, _), code in zip(self.topics, reason_codes)
                   if code.is_failure]
        if refused:
            log.error("the broker refused the subscription to %s (%s); the portal's "
                      "MQTT account needs read access to it (mosquitto/acl)",
                      " and ".join(refused), reason_codes)
            # without the statistics only the System page and /metrics are short of figures
            if not set(refused) <= {platform_stats.STATS_TOPIC, platform_stats.SYS_TOPIC}:
                return
        log.info("subscribed to %s", ", ".join(topic for topic, _ in self.topics))
        self.subscribed.set()

    def on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.subscribed.clear()
        if reason_code.is_failure:
            log.warning("lost the MQTT connection (%s); reconnecting", reason_code)

    def on_message(self, client, userdata, message):
        """Forward one octopus/live or alert message to the browsers, or drop it if malformed."""
        if message.topic.startswith(ALERTS_PREFIX):
            self.on_alert(message)
            return
        if message.topic.startswith(enrolment.PREFIX):
            if self.on_enrolment:
                self.on_enrolment(client, message)
            return
        if message.topic.startswith((platform_stats.STATS_PREFIX, platform_stats.SYS_PREFIX)):
            if self.on_platform:
                self.on_platform(message.topic, message.payload)
            return
        data = parse(message.payload)
        if data is None:
            log.warning("dropped a malformed message on %s (%d bytes): %r",
                        message.topic, len(message.payload), message.payload[:80])
            return
        self.emit(EVENT, data)

    def on_alert(self, message):
        """Forward one alert state to the browsers; an empty payload (a retained state
        removed, e.g. when its rule was deleted) is nothing to show."""
        if not message.payload:
            return
        alert = parse_alert(message.payload)
        if alert is None:
            log.warning("dropped a malformed alert state on %s (%d bytes): %r",
                        message.topic, len(message.payload), message.payload[:80])
            return
        self.emit(ALERT_EVENT, alert)


def emit_to_browsers(event, data):
    """Send `event` to every logged-in browser connected to this process."""
    namespace = ALERTS_NAMESPACE if event == ALERT_EVENT else "/"
    socketio.emit(event, data, to=ROOM, namespace=namespace)


@socketio.on("connect")
@socketio.on("connect", namespace=ALERTS_NAMESPACE)
def on_socket_connect(auth=None):
    """Let only logged-in users in; they join the room that receives live messages."""
    if not current_user.is_authenticated:
        raise ConnectionRefusedError("login required")
    join_room(ROOM)
    join_room(USER_ROOM.format(current_user.id))


def init_app(app, start):
    """Create the app's bridge, and start it if `start` (a real run, or a test that asks).

    It runs in the process that serves the browsers: under gunicorn, in the worker (no
    --preload, whose fork would leave paho's thread behind in the master).
    """
    on_enrolment = None
    if app.config["MQTT_ENROLMENT"]:
        def on_enrolment(client, message):
            enrolment.handle(app, client, message)
    bridge = LiveBridge(app.config["MQTT_HOST"], app.config["MQTT_PORT"],
                        app.config["MQTT_PORTAL_USER"], app.config["MQTT_PORTAL_PASSWORD"],
                        emit_to_browsers, on_enrolment, platform_stats.of(app).handle)
    app.extensions[EXTENSION] = bridge
    if start:
        bridge.start()
    return bridge


def stop(app):
    """Stop the app's bridge if it runs (tests, shutdown)."""
    bridge = app.extensions.pop(EXTENSION, None)
    if bridge is not None:
        bridge.stop()


class PublishError(RuntimeError):
    """The broker did not take every message; the text says why, for the API's caller."""


def send(messages, timeout, retain=False):
    """Publish (topic, payload) pairs at QoS 1 on this app's MQTT connection and wait until
    the broker has acknowledged every one, at most `timeout` s; return how many it did not.
    Raise PublishError if there is no connection to publish on.
    """
    bridge = current_app.extensions.get(EXTENSION)
    if bridge is None or not bridge.started:
        raise PublishError("the portal has no MQTT connection (LIVE_ENABLED is off), so it "
                           "cannot publish")
    if not bridge.client.is_connected():
        # refused before publishing: paho would queue the messages and send them after a
        # reconnect, behind the caller's back
        raise PublishError(f"the portal is not connected to the MQTT broker at "
                           f"{bridge.host}:{bridge.port}; try again shortly")
    deadline = time.monotonic() + timeout
    sent = [bridge.client.publish(topic, payload, qos=1, retain=retain)
            for topic, payload in messages]
    unconfirmed = 0
    for info in sent:
        try:
            info.wait_for_publish(max(deadline - time.monotonic(), 0.001))
        except (RuntimeError, ValueError):  # the connection dropped under the message
            pass
        unconfirmed += not info.is_published()
    return unconfirmed


def deliver(topic, payload, timeout):
    """Publish one message at QoS 1; None once the broker has confirmed it, else why not
    (commands and enrolment replies, which report rather than raise)."""
    try:
        if send([(topic, payload)], timeout):
            return f"the broker did not confirm it within {timeout:g} s"
    except PublishError as exc:
        return str(exc)
    return None


def publish(messages, timeout):
    """Publish (topic, payload) pairs at QoS 1 and wait until the broker has acknowledged
    every one (HTTP ingest: the readings then take the devices' path). Raise PublishError if
    it is not connected or does not confirm within `timeout` s.
    """
    unconfirmed = send(messages, timeout)
    if unconfirmed:
        log.warning("the broker did not acknowledge %d of %d HTTP readings within %g s",
                    unconfirmed, len(messages), timeout)
        raise PublishError(f"the MQTT broker did not confirm {unconfirmed} of {len(messages)} "
                           f"readings within {timeout:g} s; send them again (readings with "
                           "a ts are stored once however often they are sent)")


def publish_alerts(timeout, retained=(), passing=(), removed=()):
    """Publish alert states (dicts of ALERT_FIELDS) at QoS 1 on their alert_topic():
    `retained` ones are kept by the broker (the newest alert of its topic, rule not deleted),
    `passing` ones only reach whoever listens now (an older alert of the same topic, whose
    state must not replace the newer one's; an alert of a deleted rule); the retained states
    on the topics `removed` are deleted. Raise PublishError if the broker does not confirm
    every message within `timeout` s.
    """
    keep = [(alert_topic(a), json.dumps(a)) for a in retained] + [(t, b"") for t in removed]
    once = [(alert_topic(a), json.dumps(a)) for a in passing]
    unconfirmed = (send(keep, timeout, retain=True) if keep else 0) + \
        (send(once, timeout) if once else 0)
    if unconfirmed:
        raise PublishError(f"the MQTT broker did not confirm {unconfirmed} of "
                           f"{len(keep) + len(once)} alert messages within {timeout:g} s")
