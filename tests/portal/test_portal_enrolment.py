"""Device enrolment (MQTT_ENROLMENT=true): a device without an account asks for one with the
shared enrolment login, waits in quarantine, and receives its own login once an admin
approves it on /device-accounts. Real broker, real portal bridge, real database."""
import json
import queue
import re
import uuid

import paho.mqtt.client as mqtt
import pytest

from octopus_portal import live
from tests.conftest import running_broker

from .helpers import csrf_token, login

WANTED = {"site": "planta", "room": "sala", "device": "medidor42"}


@pytest.fixture
def broker():
    with running_broker(MQTT_ENROLMENT="true") as broker:
        yield broker


@pytest.fixture
def admin(make_app, broker):
    """A logged-in admin of a portal that takes enrolment requests from the test's broker."""
    user, password = broker.user("PORTAL")
    app = make_app(LIVE_ENABLED=True, MQTT_ENROLMENT=True, MQTT_HOST=broker.host,
                   MQTT_PORT=broker.port, MQTT_PORTAL_USER=user, MQTT_PORTAL_PASSWORD=password)
    assert app.extensions[live.EXTENSION].subscribed.wait(10), "the portal is not subscribed"
    client = app.test_client()
    assert login(client).status_code == 302
    return client


class Client:
    """A paho client (MQTT 5, to see refusals) whose received messages land in a queue."""

    def __init__(self, broker, username, password, client_id=None):
        self.client_id = client_id or f"meter-{uuid.uuid4().hex[:6]}"
        self.received, self.acks = queue.Queue(), queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, u, f, reason, p: self.acks.put(reason)
        self.client.on_subscribe = lambda c, u, mid, reasons, p: self.acks.put(reasons[0])
        self.client.on_message = lambda c, u, m: self.received.put((m.topic, m.payload))
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.connack = self.acks.get(timeout=10)

    def subscribe(self, topic):
        self.client.subscribe(topic, qos=1)
        return self.acks.get(timeout=10)

    def ask(self, payload):
        """Ask for an account and return the first answer."""
        assert not self.subscribe(f"octopus/enrol/{self.client_id}/reply").is_failure
        self.client.publish(f"octopus/enrol/{self.client_id}", payload, qos=1)
        topic, answer = self.received.get(timeout=10)
        assert topic == f"octopus/enrol/{self.client_id}/reply"
        return json.loads(answer)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def enrolling(broker):
    device = Client(broker, broker.config["MQTT_ENROL_USER"], broker.config["MQTT_ENROL_PASSWORD"])
    assert not device.connack.is_failure
    yield device
    device.close()


def decide(admin, decision):
    page = admin.get("/device-accounts").get_data(as_text=True)
    enrolment_id = re.search(r'data-testid="enrolment" data-id="(\d+)"', page).group(1)
    return admin.post(f"/device-accounts/enrolments/{enrolment_id}/{decision}",
                      data={"csrf_token": csrf_token(admin, "/device-accounts")})


def test_an_approved_device_receives_its_own_login(broker, admin, enrolling, db):
    answer = enrolling.ask(json.dumps(WANTED))
    assert answer["status"] == "pending"
    waiting = db.execute("SELECT client_id, site, room, device, decision FROM device_enrolments"
                         ).fetchall()
    assert waiting == [{"client_id": enrolling.client_id, **WANTED, "decision": None}]
    assert f'data-client-id="{enrolling.client_id}"' in admin.get("/device-accounts").get_data(
        as_text=True)

    assert decide(admin, "approve").status_code == 201
    topic, reply = enrolling.received.get(timeout=10)
    credentials = json.loads(reply)
    assert credentials["status"] == "approved"
    assert credentials["username"] == "planta/sala/medidor42"

    device = Client(broker, credentials["username"], credentials["password"])
    try:
        assert not device.connack.is_failure
        assert not device.subscribe("planta/sala/medidor42/+/set").is_failure
    finally:
        device.close()
    assert db.execute("SELECT decision FROM device_enrolments").fetchone()["decision"] == "approved"
    assert db.execute("SELECT count(*) FROM device_accounts WHERE revoked_at IS NULL"
                      ).fetchone()["count"] == 1


def test_a_device_in_quarantine_can_publish_nothing_else(broker, admin, enrolling):
    assert enrolling.ask(json.dumps(WANTED))["status"] == "pending"
    watcher = Client(broker, *broker.user("NODERED"))
    try:
        assert not watcher.subscribe("planta/#").is_failure
        assert not watcher.subscribe("octopus/enrol/+").is_failure
        enrolling.client.publish("planta/sala/medidor42/energia", "1", qos=1).wait_for_publish(5)
        enrolling.client.publish("octopus/enrol/someone-else", json.dumps(WANTED),
                                 qos=1).wait_for_publish(5)
        enrolling.client.publish(f"octopus/enrol/{enrolling.client_id}", "control",
                                 qos=1).wait_for_publish(5)
        assert watcher.received.get(timeout=10)[0] == f"octopus/enrol/{enrolling.client_id}"
        assert watcher.received.empty()
    finally:
        watcher.close()
    enrolling.received.get(timeout=10)  # the portal's answer to "control": refused
    # Mosquitto's ACL file checks what it delivers, not the subscription: subscribe, then
    # check that only the device's own reply arrives.
    enrolling.subscribe("octopus/enrol/someone-else/reply")
    enrolling.subscribe("#")
    broker.publish("octopus/enrol/someone-else/reply", '{"status": "approved"}', kind="PORTAL")
    broker.publish("planta/sala/medidor42/energia/set", "0", kind="NODERED")
    broker.publish(f"octopus/enrol/{enrolling.client_id}/reply", "control", kind="PORTAL")
    own = (f"octopus/enrol/{enrolling.client_id}/reply", b"control")
    assert enrolling.received.get(timeout=10) == own
    enrolling.client.publish(f"octopus/enrol/{enrolling.client_id}", "flush", qos=1)
    enrolling.received.get(timeout=10)  # the answer to it: all before it has arrived
    # `#` matches the own reply topic too, so its messages may come twice; nothing else
    assert {topic for topic, _ in enrolling.received.queue} <= {own[0]}, \
        list(enrolling.received.queue)


def test_a_rejected_device_is_told_and_gets_nothing(broker, admin, enrolling, db):
    assert enrolling.ask(json.dumps(WANTED))["status"] == "pending"
    assert decide(admin, "reject").status_code == 302
    topic, reply = enrolling.received.get(timeout=10)
    assert json.loads(reply)["status"] == "rejected"
    assert db.execute("SELECT count(*) FROM device_accounts").fetchone()["count"] == 0


@pytest.mark.parametrize("payload, reason", [
    (b"planta/sala/medidor42", "expected JSON"),
    (json.dumps({**WANTED, "device": "a/b"}), "one topic level"),
    (json.dumps({**WANTED, "site": "octopus"}), "platform's own topic space"),
])
def test_a_bad_request_is_answered_with_the_reason(broker, admin, enrolling, db, payload, reason):
    answer = enrolling.ask(payload)
    assert answer["status"] == "refused" and reason in answer["reason"]
    assert db.execute("SELECT count(*) FROM device_enrolments").fetchone()["count"] == 0


def test_without_the_option_the_enrolment_login_does_not_exist(mqtt_broker):
    device = Client(mqtt_broker, mqtt_broker.config["MQTT_ENROL_USER"],
                    mqtt_broker.config["MQTT_ENROL_PASSWORD"])
    device.close()
    assert device.connack.is_failure
