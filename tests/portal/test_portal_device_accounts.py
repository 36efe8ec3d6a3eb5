"""/device-accounts: an admin provisions a device's MQTT login in the real broker (dynamic
security plugin), sees the password once, and revokes it."""
import html
import re
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest

from .helpers import add_user, csrf_token, login

PASSWORD = re.compile(r'data-testid="new-account-password">([^<]+)<')
PEM = re.compile(r"-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----")


@pytest.fixture
def admin(make_app, mqtt_broker):
    """A logged-in admin's client of a portal that administers the test's broker."""
    user, password = mqtt_broker.user("PORTAL")
    client = make_app(MQTT_HOST=mqtt_broker.host, MQTT_PORT=mqtt_broker.port,
                      MQTT_PORTAL_USER=user, MQTT_PORTAL_PASSWORD=password,
                      MQTT_TLS_CA_CERTFILE=str(mqtt_broker.tls_dir / "ca.crt"),
                      MQTT_TLS_CA_KEYFILE=str(mqtt_broker.tls_dir / "ca.key")).test_client()
    assert login(client).status_code == 302
    return client


def provision(client, site="oficina", room="servidores", device="servidor9"):
    return client.post("/device-accounts", data={
        "csrf_token": csrf_token(client, "/device-accounts"),
        "site": site, "room": room, "device": device})


def connect(broker, username, password):
    """The broker's CONNACK reason for these credentials, and the client (loop running)."""
    answered, result = threading.Event(), {}

    def on_connect(client, userdata, flags, reason_code, properties):
        result["reason"] = reason_code
        answered.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    client.on_connect = on_connect
    client.connect(broker.host, broker.port)
    client.loop_start()
    assert answered.wait(10), "no CONNACK"
    return result["reason"], client


def test_a_provisioned_device_connects_with_the_password_shown_once(mqtt_broker, admin, db):
    page = provision(admin)
    assert page.status_code == 201
    assert page.headers["Cache-Control"] == "no-store"
    password = PASSWORD.search(page.get_data(as_text=True)).group(1)

    reason, device = connect(mqtt_broker, "oficina/servidores/servidor9", password)
    device.disconnect()
    device.loop_stop()
    assert not reason.is_failure, reason

    listing = admin.get("/device-accounts").get_data(as_text=True)
    assert 'data-username="oficina/servidores/servidor9"' in listing
    assert password not in listing  # shown that once only
    stored = db.execute("SELECT * FROM device_accounts").fetchall()
    assert len(stored) == 1 and password not in repr(stored)


def test_a_revoked_device_is_disconnected_and_refused(mqtt_broker, admin, db):
    password = PASSWORD.search(provision(admin).get_data(as_text=True)).group(1)
    reason, device = connect(mqtt_broker, "oficina/servidores/servidor9", password)
    assert not reason.is_failure
    dropped = threading.Event()
    device.on_disconnect = lambda *args: dropped.set()

    account_id = db.execute("SELECT id FROM device_accounts").fetchone()["id"]
    answer = admin.post(f"/device-accounts/{account_id}/revoke",
                        data={"csrf_token": csrf_token(admin, "/device-accounts")})
    assert answer.status_code == 302
    try:
        assert dropped.wait(5), "the revoked device is still connected"
    finally:
        device.disconnect()
        device.loop_stop()
    reason, again = connect(mqtt_broker, "oficina/servidores/servidor9", password)
    again.loop_stop()
    assert reason.is_failure
    assert db.execute("SELECT revoked_at IS NOT NULL AS revoked FROM device_accounts"
                      ).fetchone()["revoked"]
    assert 'data-testid="account-revoked"' in admin.get("/device-accounts").get_data(as_text=True)


def test_a_device_with_a_live_account_cannot_get_a_second_one(mqtt_broker, admin):
    assert provision(admin).status_code == 201
    again = provision(admin)
    assert again.status_code == 400
    assert "already has an account" in again.get_data(as_text=True)


@pytest.mark.parametrize("levels, message", [
    (("oficina", "servidores", "a/b"), "Device: one topic level"),
    (("oficina", "", "servidor9"), "Room: one topic level"),
    (("octopus", "platform", "x"), "own topic space"),
])
def test_bad_topic_levels_are_refused_with_a_reason(app, logged_in, db, levels, message):
    answer = provision(logged_in, *levels)
    assert answer.status_code == 400
    assert message in answer.get_data(as_text=True)
    assert db.execute("SELECT count(*) FROM device_accounts").fetchone()["count"] == 0


def test_a_broker_that_cannot_be_reached_leaves_no_account(mqtt_broker, admin, db):
    mqtt_broker.stop()
    answer = provision(admin)
    assert answer.status_code == 502
    assert "Not provisioned" in answer.get_data(as_text=True)
    assert db.execute("SELECT count(*) FROM device_accounts").fetchone()["count"] == 0


def test_only_admins_provision(app, db):
    operator = add_user(app, db, "operator")
    assert operator.get("/device-accounts").status_code == 403


def test_a_client_certificate_is_issued_by_the_platform_ca(mqtt_broker, admin, db):
    from cryptography import x509
    page = admin.post("/device-accounts", data={
        "csrf_token": csrf_token(admin, "/device-accounts"), "site": "oficina",
        "room": "servidores", "device": "servidor9", "with_certificate": "yes"})
    assert page.status_code == 201
    text = html.unescape(page.get_data(as_text=True))
    cert = x509.load_pem_x509_certificate(PEM.search(text).group(0).encode())
    ca = x509.load_pem_x509_certificate((mqtt_broker.tls_dir / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    assert cert.subject.rfc4514_string() == "CN=oficina/servidores/servidor9"
    assert "PRIVATE KEY" in text
    stored = db.execute("SELECT client_certificate_serial FROM device_accounts").fetchone()
    assert stored["client_certificate_serial"] == format(cert.serial_number, "x")
