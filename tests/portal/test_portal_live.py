"""The live view: octopus/live over MQTT reaches logged-in Socket.IO clients, and only them."""
import json
import logging
import time

import paho.mqtt.client as mqtt
import pytest

from octopus_portal import live, socketio

from .helpers import login

MESSAGE = {
    "readings": [{"site": "oficina", "room": "servidores", "device": "servidor1",
                  "attribute": "temperatura", "ts": "2026-11-22T12:00:00.000Z",
                  "value": 23.5, "unit": "°C"}],
    "statuses": [{"site": "oficina", "room": "servidores", "device": "servidor1",
                  "status": "online", "ts": "2026-11-22T12:00:00.000Z"}],
    "rejects": 0,
}


def live_events(sio, timeout=5.0, count=1):
    """The `live` events a Socket.IO test client receives, waiting up to `timeout` for `count`."""
    events = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(events) < count:
        events += [e["args"][0] for e in sio.get_received() if e["name"] == live.EVENT]
        time.sleep(0.02)
    return events


def mqtt_message(payload, topic=live.TOPIC):
    message = mqtt.MQTTMessage(topic=topic.encode())
    message.payload = payload
    return message


def test_anonymous_socket_is_refused(app, client):
    assert not socketio.test_client(app, flask_test_client=client).is_connected()
    assert not socketio.test_client(app).is_connected()


def test_bridge_does_not_start_in_tests_unless_asked(app):
    assert app.extensions[live.EXTENSION].started is False


def test_logged_in_socket_receives_handled_messages(app, logged_in):
    sio = socketio.test_client(app, flask_test_client=logged_in)
    assert sio.is_connected()
    app.extensions[live.EXTENSION].on_message(None, None, mqtt_message(json.dumps(MESSAGE).encode()))
    assert live_events(sio) == [MESSAGE]


@pytest.mark.parametrize("payload", [b"not json", b"\xff\xfe", b"[1, 2]", b'"text"',
                                     b'{"readings": 5}'])
def test_malformed_messages_are_dropped_and_logged(app, logged_in, caplog, payload):
    sio = socketio.test_client(app, flask_test_client=logged_in)
    with caplog.at_level(logging.WARNING, logger="octopus_portal.live"):
        app.extensions[live.EXTENSION].on_message(None, None, mqtt_message(payload))
    assert live_events(sio, timeout=0.2) == []
    assert "dropped a malformed message" in caplog.text


def live_app(make_app, broker):
    return make_app(LIVE_ENABLED=True, MQTT_HOST="127.0.0.1", MQTT_PORT=broker.port,
                    MQTT_PORTAL_USER=broker.user("PORTAL")[0], MQTT_PORTAL_PASSWORD=broker.user("PORTAL")[1])


def login_socket(app):
    client = app.test_client()
    assert login(client).status_code == 302
    sio = socketio.test_client(app, flask_test_client=client)
    assert sio.is_connected()
    return sio


def test_message_published_to_mosquitto_reaches_the_browser(make_app, mqtt_broker):
    app = live_app(make_app, mqtt_broker)
    bridge = app.extensions[live.EXTENSION]
    sio = login_socket(app)
    assert bridge.subscribed.wait(10), "the portal never subscribed to octopus/live"
    # dropped, and the next one still arrives
    mqtt_broker.publish(live.TOPIC, b"{broken", kind="NODERED")
    mqtt_broker.publish(live.TOPIC, json.dumps(MESSAGE), kind="NODERED")
    assert live_events(sio) == [MESSAGE]
    assert live_events(sio, timeout=0.2) == []


def test_bridge_reconnects_when_the_broker_comes_back(make_app, mqtt_broker):
    app = live_app(make_app, mqtt_broker)
    bridge = app.extensions[live.EXTENSION]
    sio = login_socket(app)
    assert bridge.subscribed.wait(10)
    mqtt_broker.stop()
    deadline = time.monotonic() + 10
    while bridge.subscribed.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not bridge.subscribed.is_set(), "the bridge did not notice the broker going away"
    mqtt_broker.start()
    # paho retries after 1 s, then 2, 4...: back within 10 s
    assert bridge.subscribed.wait(10), "the bridge did not reconnect within 10 s"
    mqtt_broker.publish(live.TOPIC, json.dumps(MESSAGE), kind="NODERED")
    assert live_events(sio) == [MESSAGE]


def test_wrong_mqtt_password_is_logged(make_app, mqtt_broker, caplog):
    with caplog.at_level(logging.ERROR, logger="octopus_portal.live"):
        app = make_app(LIVE_ENABLED=True, MQTT_HOST="127.0.0.1", MQTT_PORT=mqtt_broker.port,
                       MQTT_PORTAL_USER=mqtt_broker.user("PORTAL")[0], MQTT_PORTAL_PASSWORD="wrong")
        deadline = time.monotonic() + 5
        while "refused the portal" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "MQTT_PORTAL_PASSWORD" in caplog.text
    assert not app.extensions[live.EXTENSION].subscribed.is_set()
