"""POST /api/v1/readings: checked, then published at QoS 1 to a real Mosquitto."""
import json
import queue
import time
import uuid

import paho.mqtt.client as mqtt
import pytest

from octopus_portal import live
from octopus_portal.keys import create_key

TOPIC = "oficina/servidores/servidor1/temperatura"


def write_key(db, site=None):
    _, secret = create_key(db, "writer", ["write"], site, None)
    return {"Authorization": f"Bearer {secret}"}


def portal_on(make_app, broker):
    """A portal app connected to `broker` with the portal's own account, as deployed."""
    user, password = broker.user("PORTAL")
    app = make_app(LIVE_ENABLED=True, MQTT_HOST="127.0.0.1", MQTT_PORT=broker.port,
                   MQTT_PORTAL_USER=user, MQTT_PORTAL_PASSWORD=password)
    assert app.extensions[live.EXTENSION].subscribed.wait(10), "the portal did not connect"
    return app


class Subscriber:
    """What a device-topic consumer (the ingest's account) receives from the broker."""

    def __init__(self, broker, topic="#"):
        self.messages = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"test-sub-{uuid.uuid4().hex[:6]}")
        self.client.username_pw_set(*broker.user("NODERED"))
        subscribed = queue.Queue()
        self.client.on_subscribe = lambda *args: subscribed.put(True)
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.qos, m.payload))
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        subscribed.get(timeout=5)

    def received(self, count, timeout=5.0):
        out = [self.messages.get(timeout=timeout) for _ in range(count)]
        return [(t, q, json.loads(p)) for t, q, p in out if not t.startswith("octopus/")]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber(mqtt_broker):
    sub = Subscriber(mqtt_broker, "+/+/+/+")
    yield sub
    sub.close()


def test_one_reading_reaches_the_broker_as_a_device_payload(make_app, mqtt_broker, subscriber, db):
    client = portal_on(make_app, mqtt_broker).test_client()
    response = client.post("/api/v1/readings", headers=write_key(db), json={
        "topic": TOPIC, "value": 23.5, "ts": "2026-11-22T12:00:00Z", "unit": "°C"})
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json() == {"accepted": 1}
    assert subscriber.received(1) == [
        (TOPIC, 1, {"value": 23.5, "ts": "2026-11-22T12:00:00Z", "unit": "°C"})]


def test_a_batch_is_published_in_order_and_optional_fields_left_out(make_app, mqtt_broker,
                                                                    subscriber, db):
    client = portal_on(make_app, mqtt_broker).test_client()
    readings = [{"topic": f"casa/sala/sensor{i % 3}/temperatura", "value": i,
                 "ts": 1795000000000 + i} for i in range(500)]
    readings += [{"topic": "casa/sala/porta/estado", "value": "open"},
                 {"topic": "casa/sala/porta/ligado", "value": True}]
    response = client.post("/api/v1/readings", headers=write_key(db), json={"readings": readings})
    assert response.get_json() == {"accepted": 502}
    got = subscriber.received(502)
    assert [(t, p) for t, _, p in got[:2]] == [
        ("casa/sala/sensor0/temperatura", {"value": 0, "ts": 1795000000000}),
        ("casa/sala/sensor1/temperatura", {"value": 1, "ts": 1795000000001})]
    assert got[-2:] == [("casa/sala/porta/estado", 1, {"value": "open"}),
                        ("casa/sala/porta/ligado", 1, {"value": True})]


BAD_READINGS = [
    ({"topic": "octopus/live/x/y", "value": 1}, "octopus/"),
    ({"topic": "oficina/+/servidor1/temperatura", "value": 1}, "no + or #"),
    ({"topic": "oficina/#", "value": 1}, "measurement topic"),
    ({"topic": "oficina/servidores/servidor1", "value": 1}, "measurement topic"),
    ({"topic": "oficina/servidores/servidor1/temperatura/set", "value": 1}, "measurement topic"),
    ({"topic": "oficina//servidor1/temperatura", "value": 1}, "measurement topic"),
    ({"topic": "$SYS/a/b/c", "value": 1}, "measurement topic"),
    ({"topic": "a/b/c\u0000/d", "value": 1}, "measurement topic"),
    ({"topic": "a/b/" + "c" * 129 + "/d", "value": 1}, "measurement topic"),
    ({"topic": TOPIC + "\n", "value": 1}, "measurement topic"),
    ({"topic": "a/b/c/\ud800", "value": 1}, "Unicode"),
    ({"topic": TOPIC, "value": "open\udfff"}, "Unicode"),
    ({"topic": "oficina/servidores/servidor1/status", "value": "online"}, "availability"),
    ({"topic": TOPIC}, '"value"'),
    ({"topic": TOPIC, "value": None}, '"value"'),
    ({"topic": TOPIC, "value": [1]}, '"value"'),
    ({"topic": TOPIC, "value": {"v": 1}}, '"value"'),
    ({"topic": TOPIC, "value": 1, "ts": True}, '"ts"'),
    ({"topic": TOPIC, "value": 1, "ts": {"at": 1}}, '"ts"'),
    ({"topic": TOPIC, "value": 1, "unit": 5}, '"unit"'),
    ({"topic": TOPIC, "value": 1, "val": 2}, "unknown field 'val'"),
    ({"readings": []}, "1 to 1000"),
    ({"readings": {"topic": TOPIC}}, "1 to 1000"),
    ({"readings": [{"topic": TOPIC, "value": 1}], "extra": 1}, "only field"),
    ({"readings": [{"topic": TOPIC, "value": 1}, 5]}, "readings[1]"),
    ({"readings": [{"topic": TOPIC, "value": 1}] * 1001}, "at most 1000"),
    ([{"topic": TOPIC, "value": 1}], "JSON object"),
]


@pytest.mark.parametrize("body,words", BAD_READINGS)
def test_malformed_readings_are_400_with_a_message(client, db, body, words):
    response = client.post("/api/v1/readings", headers=write_key(db), json=body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert words in response.get_json()["error"]


def test_nothing_of_a_refused_call_is_published(make_app, mqtt_broker, subscriber, db):
    client = portal_on(make_app, mqtt_broker).test_client()
    headers = write_key(db)
    for body, _ in BAD_READINGS:
        assert client.post("/api/v1/readings", headers=headers, json=body).status_code == 400
    # a batch whose last reading is bad publishes none of the good ones before it
    good = {"topic": "casa/sala/sensor1/temperatura", "value": 1}
    body = {"readings": [good, {"topic": "octopus/x/y/z", "value": 1}]}
    assert client.post("/api/v1/readings", headers=headers, json=body).status_code == 400
    assert client.post("/api/v1/readings", headers=headers, json=good).status_code == 202
    assert subscriber.received(1) == [(good["topic"], 1, {"value": 1})]
    with pytest.raises(queue.Empty):
        subscriber.messages.get(timeout=0.5)


@pytest.mark.parametrize("data", ["NaN", "Infinity", '{"topic": "a/b/c/d", "value": -Infinity}'])
def test_non_finite_numbers_are_refused(client, db, data):
    body = data if data.startswith("{") else f'{{"topic": "{TOPIC}", "value": {data}}}'
    response = client.post("/api/v1/readings", headers=write_key(db), data=body,
                           content_type="application/json")
    assert response.status_code == 400 and "finite" in response.get_json()["error"]


def test_body_must_be_json_and_not_too_large(client, db):
    headers = write_key(db)
    response = client.post("/api/v1/readings", headers=headers, data="23.5",
                           content_type="text/plain")
    assert response.status_code == 415 and "application/json" in response.get_json()["error"]
    response = client.post("/api/v1/readings", headers=headers, data="{not json",
                           content_type="application/json")
    assert response.status_code == 400
    response = client.post("/api/v1/readings", headers=headers,
                           data=json.dumps({"topic": TOPIC, "value": "x" * (2 << 20)}),
                           content_type="application/json")
    assert response.status_code == 413 and response.is_json


def test_site_restricted_key_writes_its_own_site(make_app, mqtt_broker, subscriber, db):
    client = portal_on(make_app, mqtt_broker).test_client()
    response = client.post("/api/v1/readings", headers=write_key(db, site="oficina"),
                           json={"topic": TOPIC, "value": 1})
    assert response.status_code == 202
    assert subscriber.received(1)[0][0] == TOPIC


def test_broker_unreachable_is_503_and_nothing_is_queued(make_app, mqtt_broker, db):
    app = portal_on(make_app, mqtt_broker)
    bridge = app.extensions[live.EXTENSION]
    mqtt_broker.stop()
    deadline = time.monotonic() + 10
    while bridge.client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.05)
    response = app.test_client().post("/api/v1/readings", headers=write_key(db),
                                      json={"topic": TOPIC, "value": 1})
    assert response.status_code == 503
    assert "not connected to the MQTT broker" in response.get_json()["error"]
    assert not bridge.client._out_messages  # nothing left to be sent behind the caller's back
