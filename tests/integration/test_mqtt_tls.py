"""Issue 7: MQTT over TLS. Every listener of the running platform (1883, 9001 WebSocket,
8883 TLS, 8884 WebSocket over TLS, on free ports here) refuses anonymous clients and wrong
passwords and accepts the platform's accounts; the TLS ones are verified against the
generated platform CA with host name checks, and speak TLS 1.2 or newer only. With mutual
TLS switched on (a broker of its own), a device also needs a client certificate issued by
the platform CA, on top of its password."""
import queue
import shutil
import socket
import ssl
import threading
import uuid
import warnings

import paho.mqtt.client as mqtt
import pytest

from octopus_portal.certificates import ensure_certificates, issue_client_certificate
from tests.conftest import Broker
from tests.integration.conftest import wait_for
from tests.helpers import make_state_dir

# name: (port setting, paho transport, TLS)
LISTENERS = {
    "mqtt": ("MQTT_PORT", "tcp", False),
    "websocket": ("MQTT_WS_PORT", "websockets", False),
    "mqtt-tls": ("MQTT_TLS_PORT", "tcp", True),
    "websocket-tls": ("MQTT_WSS_PORT", "websockets", True),
}
TLS_LISTENERS = [name for name, (_, _, tls) in LISTENERS.items() if tls]
# platform_config (tests/integration/conftest.py) gives the broker's certificate this name
CONFIGURED_NAME = "mqtt.octopus.test"
LEGACY = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1}
CURRENT = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


def verifying_context(cafile, certfile=None, keyfile=None):
    """What a careful device does: trust the platform CA, check the host name."""
    context = ssl.create_default_context(cafile=str(cafile))
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    if certfile:
        context.load_cert_chain(certfile, keyfile)
    return context


def connect_result(host, port, transport="tcp", tls=None, username=None, password=None):
    """The broker's answer to an MQTT 5 CONNECT: the CONNACK's reason code, or a string
    saying how the connection ended without one (TLS handshake refused, closed)."""
    answers = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5, transport=transport, reconnect_on_failure=False)
    if tls:
        client.tls_set_context(tls)
    if username:
        client.username_pw_set(username, password)
    client.on_connect = lambda c, u, flags, reason, p: answers.put(reason)
    client.on_disconnect = lambda c, u, flags, reason, p: answers.put(f"closed: {reason}")
    try:
        client.connect(host, int(port), keepalive=10)
    except ConnectionRefusedError:
        raise  # nothing listens there: a broken test, not a refusal
    except (ssl.SSLError, OSError, mqtt.WebsocketConnectionError) as exc:
        return f"refused: {exc!r}"
    client.loop_start()
    try:
        return answers.get(timeout=10)
    except queue.Empty:
        return "no answer in 10 s"
    finally:
        client.disconnect()
        client.loop_stop()


def accepted(result):
    return isinstance(result, mqtt.ReasonCode) and not result.is_failure


def on_listener(platform, name, **credentials):
    setting, transport, tls = LISTENERS[name]
    context = verifying_context(platform.stack.tls_dir / "ca.crt") if tls else None
    return connect_result(platform.host, platform.config[setting], transport, context,
                          **credentials)


# -- who may connect, on every listener --------------------------------------------------
@pytest.mark.parametrize("listener", LISTENERS)
def test_anonymous_clients_are_refused(platform, listener):
    result = on_listener(platform, listener)
    assert isinstance(result, mqtt.ReasonCode), result  # a CONNACK: TLS itself worked
    assert result.is_failure
    assert result.getName() in ("Not authorized", "Bad user name or password")


@pytest.mark.parametrize("listener", LISTENERS)
def test_a_wrong_password_is_refused(platform, listener):
    result = on_listener(platform, listener, username=platform.config["MQTT_SIMULATOR_USER"],
                         password="not-the-password")
    assert isinstance(result, mqtt.ReasonCode) and result.is_failure, result


@pytest.mark.parametrize("listener", LISTENERS)
def test_a_platform_account_is_accepted(platform, listener):
    """The control of the two above; on the TLS listeners the broker's certificate is
    verified against the platform CA, host name included."""
    result = on_listener(platform, listener, username=platform.config["MQTT_SIMULATOR_USER"],
                         password=platform.config["MQTT_SIMULATOR_PASSWORD"])
    assert accepted(result), result


# -- the broker's certificate -------------------------------------------------------------
def tls_version_of(port, context, server_hostname="127.0.0.1", host="127.0.0.1"):
    """Complete a TLS handshake with `context`; return the version negotiated."""
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=server_hostname) as tls:
            return tls.version()


@pytest.mark.parametrize("listener", TLS_LISTENERS)
def test_the_certificate_is_valid_for_the_configured_names_only(platform, listener):
    port = platform.config[LISTENERS[listener][0]]
    context = verifying_context(platform.stack.tls_dir / "ca.crt")
    for name in ("localhost", "127.0.0.1", CONFIGURED_NAME, socket.gethostname()):
        assert tls_version_of(port, context, server_hostname=name) in CURRENT
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        tls_version_of(port, context, server_hostname="not-configured.example")
    # a client that does not trust the platform CA does not trust the broker either
    with pytest.raises(ssl.SSLCertVerificationError, match="self.signed|unable to get"):
        tls_version_of(port, ssl.create_default_context(capath="/nonexistent"))


# -- TLS 1.2 or newer only ----------------------------------------------------------------
def client_context(cafile, version):
    """A client that offers exactly `version`. OpenSSL 3 refuses TLS 1.0 and 1.1 at its
    default security level on the client side too, hence SECLEVEL=0; the control below
    proves that this client does complete such a handshake when the server allows it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "ssl.TLSVersion.TLSv1 is deprecated"
        context.minimum_version = context.maximum_version = version
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


@pytest.fixture
def permissive_server(platform):
    """A local Python TLS server with the broker's certificate that accepts TLS 1.0 up:
    (port, versions it negotiated)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(platform.stack.tls_dir / "server.crt",
                            platform.stack.tls_dir / "server.key")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    negotiated = []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    negotiated.append(tls.version())
            except (ssl.SSLError, OSError) as exc:
                negotiated.append(repr(exc))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], negotiated
    listener.close()
    thread.join(5)


@pytest.mark.parametrize("version", LEGACY)
def test_control_the_legacy_client_completes_a_handshake_where_it_is_allowed(
        platform, permissive_server, version):
    port, negotiated = permissive_server
    context = client_context(platform.stack.tls_dir / "ca.crt", LEGACY[version])
    assert tls_version_of(port, context) == version
    # the server's thread records the handshake after the client has returned
    wait_for(lambda: negotiated, 5, what="the server to record the handshake")
    assert negotiated == [version]


@pytest.mark.parametrize("version", LEGACY)
@pytest.mark.parametrize("listener", TLS_LISTENERS)
def test_the_broker_refuses_tls_1_0_and_1_1(platform, listener, version):
    context = client_context(platform.stack.tls_dir / "ca.crt", LEGACY[version])
    with pytest.raises(ssl.SSLError):
        tls_version_of(platform.config[LISTENERS[listener][0]], context)


@pytest.mark.parametrize("version", CURRENT)
@pytest.mark.parametrize("listener", TLS_LISTENERS)
def test_the_broker_speaks_tls_1_2_and_1_3(platform, listener, version):
    context = client_context(platform.stack.tls_dir / "ca.crt", CURRENT[version])
    assert tls_version_of(platform.config[LISTENERS[listener][0]], context) == version


# -- mutual TLS ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mutual_tls_broker():
    """A Mosquitto of its own, started by the launcher's code with mutual TLS on; a device
    certificate issued by the platform CA, and one issued by a CA the broker does not know."""
    state = make_state_dir("octopus-mtls-")
    broker = Broker(state, MQTT_TLS_REQUIRE_CLIENT_CERT="true")
    ca = ensure_certificates(broker.tls_dir)  # the same folder prepare() filled: no change
    stranger_ca = ensure_certificates(state / "stranger-ca")
    for name, issuer in (("device", ca), ("stranger", stranger_ca)):
        cert_pem, key_pem = issue_client_certificate(issuer.cafile, issuer.ca_keyfile,
                                                     f"{name}-1")
        (state / f"{name}.crt").write_text(cert_pem)
        (state / f"{name}.key").write_text(key_pem)
    broker.start()
    yield broker, state
    broker.supervisor.stop_all()
    shutil.rmtree(state, ignore_errors=True)


def mutual_connect(broker, state, listener, client=None, password=None):
    _, transport, _ = LISTENERS[listener]
    port = broker.tls_port if transport == "tcp" else broker.wss_port
    files = (state / f"{client}.crt", state / f"{client}.key") if client else ()
    user, right_password = broker.user("SIMULATOR")
    return connect_result(broker.host, port, transport,
                          verifying_context(broker.tls_dir / "ca.crt", *files),
                          username=user, password=password or right_password)


@pytest.mark.parametrize("listener", TLS_LISTENERS)
def test_mutual_tls_refuses_a_device_without_a_client_certificate(mutual_tls_broker, listener):
    result = mutual_connect(*mutual_tls_broker, listener)
    assert isinstance(result, str), result  # refused by TLS, before any CONNACK


@pytest.mark.parametrize("listener", TLS_LISTENERS)
def test_mutual_tls_accepts_a_device_with_a_certificate_and_its_password(mutual_tls_broker,
                                                                         listener):
    result = mutual_connect(*mutual_tls_broker, listener, client="device")
    assert accepted(result), result


@pytest.mark.parametrize("listener", TLS_LISTENERS)
def test_mutual_tls_still_needs_the_password(mutual_tls_broker, listener):
    result = mutual_connect(*mutual_tls_broker, listener, client="device",
                            password="not-the-password")
    assert isinstance(result, mqtt.ReasonCode) and result.is_failure, result


@pytest.mark.parametrize("listener", TLS_LISTENERS)
def test_mutual_tls_refuses_a_certificate_of_another_ca(mutual_tls_broker, listener):
    result = mutual_connect(*mutual_tls_broker, listener, client="stranger")
    assert isinstance(result, str), result  # refused by TLS, before any CONNACK


# -- the portal's share -------------------------------------------------------------------
def test_the_portal_is_given_the_platform_ca_to_issue_device_certificates(platform):
    pid = platform.stack.supervisor.procs["portal"][0].pid
    environ = dict(item.split("=", 1) for item in
                   open(f"/proc/{pid}/environ").read().split("\0") if "=" in item)
    assert environ["MQTT_TLS_CA_CERTFILE"] == str(platform.stack.tls_dir / "ca.crt")
    assert environ["MQTT_TLS_CA_KEYFILE"] == str(platform.stack.tls_dir / "ca.key")
    cert_pem, _ = issue_client_certificate(environ["MQTT_TLS_CA_CERTFILE"],
                                           environ["MQTT_TLS_CA_KEYFILE"], "device-1")
    assert "BEGIN CERTIFICATE" in cert_pem
