"""Device commands: an operator sends a value to …/<attribute>/set from the portal; the
device receives it from the real broker and the command is recorded (who, when, what)."""
import queue
import uuid

import paho.mqtt.client as mqtt

from octopus_portal import live

from .helpers import add_user, csrf_token, ingest

DEVICE = "/devices/oficina/servidores/aire1/commands"


def command_app(make_app, broker, db):
    user, password = broker.user("PORTAL")
    app = make_app(LIVE_ENABLED=True, MQTT_HOST=broker.host, MQTT_PORT=broker.port,
                   MQTT_PORTAL_USER=user, MQTT_PORTAL_PASSWORD=password)
    ingest(db, readings=[("oficina", "servidores", "aire1", "setpoint", "2026-11-22T10:00:00Z",
                          22.0, None, "°C")])
    assert app.extensions[live.EXTENSION].subscribed.wait(10), "the portal is not connected"
    return app


def device_listening(broker):
    """A client subscribed to the device's commands, as the device would be."""
    received = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
    client.username_pw_set(*broker.user("SIMULATOR"))
    client.on_message = lambda c, u, m: received.put((m.topic, m.payload.decode()))
    subscribed = queue.Queue()
    client.on_subscribe = lambda *args: subscribed.put(True)
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.subscribe("oficina/servidores/aire1/+/set", qos=1)
    subscribed.get(timeout=10)
    return client, received


def send(client, attribute="setpoint", value="21.5"):
    return client.post(DEVICE, data={"csrf_token": csrf_token(client, DEVICE),
                                     "attribute": attribute, "value": value})


def test_an_operator_command_reaches_the_device_and_is_recorded(make_app, mqtt_broker, db):
    app = command_app(make_app, mqtt_broker, db)
    operator = add_user(app, db, "operator")
    device, received = device_listening(mqtt_broker)
    try:
        answer = send(operator)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert received.get(timeout=10) == ("oficina/servidores/aire1/setpoint/set", "21.5")
    finally:
        device.disconnect()
        device.loop_stop()
    row = db.execute("SELECT actor, subject, detail FROM audit_log WHERE action = "
                     "'device.command'").fetchone()
    assert row["actor"] == "operator" and row["subject"] == "oficina/servidores/aire1"
    assert row["detail"] == {"topic": "oficina/servidores/aire1/setpoint/set", "payload": "21.5",
                             "delivered": True}
    page = operator.get(DEVICE).get_data(as_text=True)
    assert 'data-testid="command"' in page and "21.5" in page


def test_a_viewer_sees_the_commands_but_cannot_send_one(app, db):
    ingest(db, readings=[("oficina", "servidores", "aire1", "setpoint", "2026-11-22T10:00:00Z",
                          22.0, None, "°C")])
    viewer = add_user(app, db, "viewer")
    page = viewer.get(DEVICE)
    assert page.status_code == 200 and 'data-testid="command-form"' not in page.get_data(as_text=True)
    token = csrf_token(viewer, "/")
    answer = viewer.post(DEVICE, data={"csrf_token": token, "attribute": "setpoint", "value": "1"})
    assert answer.status_code == 403
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'device.command'"
                      ).fetchone()["count"] == 0


def test_a_bad_command_is_refused_with_a_reason(app, logged_in, db):
    ingest(db, readings=[("oficina", "servidores", "aire1", "setpoint", "2026-11-22T10:00:00Z",
                          22.0, None, "°C")])
    answer = send(logged_in, attribute="set/point")
    assert answer.status_code == 400
    assert "Attribute: one topic level" in answer.get_data(as_text=True)


def test_commands_to_an_unknown_device_are_404(app, logged_in):
    assert logged_in.get("/devices/nowhere/none/nothing/commands").status_code == 404


def test_a_command_without_a_broker_says_it_was_not_sent(app, logged_in, db):
    ingest(db, readings=[("oficina", "servidores", "aire1", "setpoint", "2026-11-22T10:00:00Z",
                          22.0, None, "°C")])
    answer = send(logged_in)
    assert answer.status_code == 502
    assert "Not sent" in answer.get_data(as_text=True)
    row = db.execute("SELECT detail FROM audit_log WHERE action = 'device.command'").fetchone()
    assert row["detail"]["delivered"] is False
