"""Alerts live: states on octopus/alerts/# reach logged-in browsers (Socket.IO `alert`,
namespace /alerts), and the portal publishes an acknowledged state, retained, itself."""
import json
import logging
import queue
import time
import uuid
from datetime import timedelta

import paho.mqtt.client as mqtt

from octopus_portal import live, socketio

from .helpers import csrf_token, login
from .test_portal_alerts import NOW, add_rule, raise_alert

TOPIC = "octopus/alerts/7/oficina/servidores/servidor1/temperatura"
STATE = {"id": 41, "rule_id": 7, "rule_name": "Server room too hot", "site": "oficina",
         "room": "servidores", "device": "servidor1", "attribute": "temperatura",
         "severity": "critical", "message": "servidor1 temperatura is 31.5", "state": "active",
         "raised_at": "2026-11-22T12:00:00.000Z", "raised_value": "31.5", "acked_at": None,
         "acked_by": None, "cleared_at": None, "cleared_value": None, "flapping": False}


def alert_events(sio, timeout=5.0, count=1):
    """The `alert` events a Socket.IO test client receives, waiting up to `timeout` for `count`."""
    events = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(events) < count:
        events += [e["args"][0] for e in sio.get_received(live.ALERTS_NAMESPACE)
                   if e["name"] == live.ALERT_EVENT]
        time.sleep(0.02)
    return events


def alert_socket(app):
    client = app.test_client()
    assert login(client).status_code == 302
    sio = socketio.test_client(app, namespace=live.ALERTS_NAMESPACE, flask_test_client=client)
    assert sio.is_connected(live.ALERTS_NAMESPACE)
    return client, sio


def message(topic, payload):
    msg = mqtt.MQTTMessage(topic=topic.encode())
    msg.payload = payload
    return msg


class Subscriber:
    """What an MQTT client (Node-RED's account) receives on octopus/alerts/#."""

    def __init__(self, broker):
        self.messages = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"test-alerts-{uuid.uuid4().hex[:6]}")
        self.client.username_pw_set(*broker.user("NODERED"))
        subscribed = queue.Queue()
        self.client.on_subscribe = lambda *args: subscribed.put(True)
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload, m.retain))
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe(live.ALERTS_TOPIC, qos=1)
        subscribed.get(timeout=5)

    def received(self, timeout=5.0):
        """(topic, payload as JSON or None if empty, retain flag) of the next message."""
        topic, payload, retain = self.messages.get(timeout=timeout)
        return topic, json.loads(payload) if payload else None, retain

    def nothing(self, wait=0.5):
        time.sleep(wait)
        return self.messages.empty()

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def live_app(make_app, broker):
    user, password = broker.user("PORTAL")
    app = make_app(LIVE_ENABLED=True, MQTT_HOST="127.0.0.1", MQTT_PORT=broker.port,
                   MQTT_PORTAL_USER=user, MQTT_PORTAL_PASSWORD=password)
    assert app.extensions[live.EXTENSION].subscribed.wait(10), "the portal did not subscribe"
    return app


def test_anonymous_browsers_cannot_follow_alerts(app):
    assert not socketio.test_client(app, namespace=live.ALERTS_NAMESPACE).is_connected(
        live.ALERTS_NAMESPACE)


def test_alert_states_reach_logged_in_browsers_and_bad_ones_are_dropped(app, caplog):
    _, sio = alert_socket(app)
    bridge = app.extensions[live.EXTENSION]
    with caplog.at_level(logging.WARNING, logger="octopus_portal.live"):
        for payload in (b"{broken", b'{"id": "41", "state": "active"}',
                        json.dumps({**STATE, "state": "gone"}).encode(),
                        json.dumps({**STATE, "site": ""}).encode()):
            bridge.on_message(None, None, message(TOPIC, payload))
        assert caplog.text.count("dropped a malformed alert state") == 4
        caplog.clear()
        bridge.on_message(None, None, message(TOPIC, b""))  # a retained state removed
        assert caplog.text == ""
    bridge.on_message(None, None, message(TOPIC, json.dumps({**STATE, "extra": 1}).encode()))
    assert alert_events(sio) == [STATE]  # only the contract's fields are passed on
    assert alert_events(sio, timeout=0.2) == []


def test_only_the_platform_alert_may_come_without_an_id(app, caplog):
    """Node-RED raises "database unreachable" while it cannot store it: no id yet."""
    _, sio = alert_socket(app)
    bridge = app.extensions[live.EXTENSION]
    platform = {**STATE, "id": None, "rule_id": None, "rule_name": "database unreachable",
                "site": "octopus", "room": "platform", "device": "database",
                "attribute": "reachable", "message": "PostgreSQL unreachable since 12:00"}
    topic = "octopus/alerts/platform/octopus/platform/database/reachable"
    with caplog.at_level(logging.WARNING, logger="octopus_portal.live"):
        bridge.on_message(None, None, message(TOPIC, json.dumps({**STATE, "id": None}).encode()))
        assert caplog.text.count("dropped a malformed alert state") == 1
    bridge.on_message(None, None, message(topic, json.dumps(platform).encode()))
    assert alert_events(sio) == [platform]


def test_a_state_published_on_the_broker_reaches_the_browser(make_app, mqtt_broker):
    app = live_app(make_app, mqtt_broker)
    _, sio = alert_socket(app)
    mqtt_broker.publish(TOPIC, json.dumps(STATE), kind="NODERED")
    assert alert_events(sio) == [STATE]


def test_an_acknowledgement_is_published_retained(make_app, mqtt_broker, db):
    app = live_app(make_app, mqtt_broker)
    rule_id = add_rule(db)
    alert_id = raise_alert(db, rule_id, "servidor1")
    client, sio = alert_socket(app)
    response = client.post(f"/alerts/{alert_id}/ack",
                           data={"csrf_token": csrf_token(client, "/alerts")})
    assert response.status_code == 302
    assert "Other pages" not in client.get("/alerts").get_data(as_text=True)  # published
    # the browsers hear of it through the broker, as every portal process does
    assert [(e["id"], e["state"], e["acked_by"]) for e in alert_events(sio)] == \
        [(alert_id, "acknowledged", "admin")]

    subscriber = Subscriber(mqtt_broker)  # subscribing afterwards: the retained state
    try:
        topic, state, retained = subscriber.received()
    finally:
        subscriber.close()
    assert topic == f"octopus/alerts/{rule_id}/oficina/servidores/servidor1/temperatura"
    assert retained
    stored = db.execute("SELECT acked_at FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert state == {**state, "id": alert_id, "rule_id": rule_id, "state": "acknowledged",
                     "acked_by": "admin", "cleared_at": None, "raised_value": "31.5",
                     "acked_at": stored["acked_at"].isoformat(timespec="milliseconds")
                     .replace("+00:00", "Z")}
    assert len(state) == len(live.ALERT_FIELDS)


def test_retained_states_stay_those_of_the_newest_alert_and_of_live_rules(make_app,
                                                                          mqtt_broker, db):
    app = live_app(make_app, mqtt_broker)
    rule_id = add_rule(db)
    older = raise_alert(db, rule_id, "servidor1", minutes_ago=30,
                        cleared_at=NOW - timedelta(minutes=20))
    newer = raise_alert(db, rule_id, "servidor1", minutes_ago=5)
    topic = f"octopus/alerts/{rule_id}/oficina/servidores/servidor1/temperatura"
    newer_state = {**STATE, "id": newer, "rule_id": rule_id}
    publish_retained(mqtt_broker, topic, json.dumps(newer_state))  # as Node-RED does
    client, _ = alert_socket(app)
    token = csrf_token(client, "/alerts")
    listener = Subscriber(mqtt_broker)
    try:
        assert listener.received()[1]["id"] == newer  # the retained one
        # acknowledging the older alert tells whoever listens, without replacing newer's
        client.post(f"/alerts/{older}/ack", data={"csrf_token": token})
        assert listener.received()[::2] == (topic, False)
        late = Subscriber(mqtt_broker)
        assert late.received()[1]["id"] == newer
        late.close()

        # deleting the rule clears its open alert: that state goes to .../deleted/..., not
        # retained; the rule's retained states are removed
        client.post(f"/alerts/rules/{rule_id}/delete", data={"csrf_token": token})
        received = {t: (state, retained) for t, state, retained in
                    (listener.received(), listener.received())}
        state, retained = received.pop(
            "octopus/alerts/deleted/oficina/servidores/servidor1/temperatura")
        assert (state["id"], state["state"], state["rule_id"], retained) == \
            (newer, "cleared", None, False)
        assert received == {topic: (None, False)}
        late = Subscriber(mqtt_broker)
        assert late.nothing(), "a deleted rule's retained state is still there"
        late.close()
    finally:
        listener.close()


def publish_retained(broker, topic, payload):
    """Publish a retained message with Node-RED's account, as the alerts node does."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"test-{uuid.uuid4().hex[:8]}")
    client.username_pw_set(*broker.user("NODERED"))
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()
