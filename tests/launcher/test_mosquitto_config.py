"""The native broker runs the committed mosquitto.conf with only ports, paths and the
mutual-TLS switch changed; its TLS files and dynamic security file are prepared."""
import json
import re
import socket

import pytest

from launcher import mosquitto
from launcher.stack import isolated_config

COMMITTED = (mosquitto.REPO_MOSQUITTO / "mosquitto.conf").read_text()
PORTS = {1883: 11883, 9001: 19001, 8883: 18883, 8884: 18884}


def render(text=None, **options):
    return mosquitto.render_config(text or COMMITTED, bind="127.0.0.1", ports=PORTS,
                                   state_dir="/state", acl_file="/repo/acl",
                                   plugin="/lib/dynsec.so", **options)


def directives(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def listeners(text):
    """{listener line: [its options]} of a config, in order."""
    blocks, current = {}, None
    for line in directives(text):
        if line.startswith("listener "):
            current = blocks.setdefault(line, [])
        elif current is not None and line.split()[0] in (
                "protocol", "certfile", "keyfile", "cafile", "tls_version",
                "require_certificate"):
            current.append(line)
    return blocks


def test_only_listeners_paths_and_the_plugin_change():
    changed = {a: b for a, b in zip(directives(COMMITTED), directives(render())) if a != b}
    assert changed == {
        "listener 1883": "listener 11883 127.0.0.1",
        "listener 9001": "listener 19001 127.0.0.1",
        "listener 8883": "listener 18883 127.0.0.1",
        "listener 8884": "listener 18884 127.0.0.1",
        "password_file /mosquitto/config/passwd": "password_file /state/passwd",
        "acl_file /mosquitto/config/acl": "acl_file /repo/acl",
        "persistence_location /mosquitto/data/": "persistence_location /state/data/",
        "plugin /usr/lib/mosquitto_dynamic_security.so": "plugin /lib/dynsec.so",
        "plugin_opt_config_file /mosquitto/data/dynamic-security.json":
            "plugin_opt_config_file /state/data/dynamic-security.json",
        "certfile /mosquitto/config/tls/server.crt": "certfile /state/tls/server.crt",
        "keyfile /mosquitto/config/tls/server.key": "keyfile /state/tls/server.key",
        "cafile /mosquitto/config/tls/ca.crt": "cafile /state/tls/ca.crt",
    }
    assert len(directives(COMMITTED)) == len(directives(render())) - 1  # + `user`
    assert re.search(r"^user \S+$", render(), re.M)


def test_committed_config_is_locked_down():
    assert re.search(r"^allow_anonymous false$", COMMITTED, re.M)
    assert re.search(r"^per_listener_settings false$", COMMITTED, re.M)  # one rule for all
    assert re.search(r"^password_file ", COMMITTED, re.M)
    assert re.search(r"^acl_file ", COMMITTED, re.M)
    assert re.search(r"^plugin \S*mosquitto_dynamic_security\.so$", COMMITTED, re.M)


def test_the_tls_listeners_serve_tls_1_2_or_newer_with_the_platform_files():
    tls_options = ["certfile /state/tls/server.crt", "keyfile /state/tls/server.key",
                   "cafile /state/tls/ca.crt", "tls_version tlsv1.2",
                   "require_certificate false"]
    assert listeners(render()) == {
        "listener 11883 127.0.0.1": ["protocol mqtt"],
        "listener 19001 127.0.0.1": ["protocol websockets"],
        "listener 18883 127.0.0.1": ["protocol mqtt", *tls_options],
        "listener 18884 127.0.0.1": ["protocol websockets", *tls_options],
    }


def test_mutual_tls_requires_a_client_certificate_on_both_tls_listeners():
    blocks = listeners(render(require_client_certificate=True))
    assert [name for name, options in blocks.items()
            if "require_certificate true" in options] == ["listener 18883 127.0.0.1",
                                                          "listener 18884 127.0.0.1"]
    assert "require_certificate false" not in render(require_client_certificate=True)


@pytest.mark.parametrize("missing", ["listener 9001", "listener 8884", "certfile"])
def test_a_config_missing_a_line_is_refused(missing):
    text = "\n".join(line for line in COMMITTED.splitlines()
                     if not line.startswith(missing)) + "\n"
    with pytest.raises(ValueError, match=missing):
        render(text)


def test_password_file_is_hashed(tmp_path):
    path = tmp_path / "passwd"
    mosquitto.write_password_file(path, {"alice": "secret-1", "bob": "secret-2"})
    text = path.read_text()
    assert "secret-1" not in text and "secret-2" not in text
    assert [line.split(":")[0] for line in text.splitlines()] == ["alice", "bob"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_dynamic_security_plugin_is_found():
    assert mosquitto.dynsec_plugin().endswith("/mosquitto_dynamic_security.so")


def test_certificate_names_come_from_the_machine_the_bind_address_and_the_setting():
    names = mosquitto.server_hostnames({"OCTOPUS_BIND": "192.0.2.4",
                                        "MQTT_TLS_HOSTNAMES": "mqtt.example, 198.51.100.2"})
    assert names == [socket.gethostname(), "192.0.2.4", "mqtt.example", "198.51.100.2"]
    assert mosquitto.server_hostnames({"OCTOPUS_BIND": "0.0.0.0"}) == [socket.gethostname()]


@pytest.fixture
def config():
    return isolated_config()


def test_prepare_gives_the_broker_its_copies_and_a_dynamic_security_file(tmp_path, config):
    conf = mosquitto.prepare(tmp_path / "mosquitto", config)
    text = conf.read_text()
    broker = tmp_path / "mosquitto"
    for name in ("server.crt", "server.key", "ca.crt"):
        assert (broker / "tls" / name).read_bytes() == (tmp_path / "tls" / name).read_bytes()
        assert f" {broker / 'tls' / name}\n" in text
    assert (broker / "tls/server.key").stat().st_mode & 0o777 == 0o600
    dynsec = broker / "data" / mosquitto.DYNSEC_FILE
    assert json.loads(dynsec.read_text()) == mosquitto.DYNSEC_EMPTY
    assert dynsec.stat().st_mode & 0o077 == 0
    assert f"plugin_opt_config_file {dynsec}\n" in text
    # a second start keeps the devices provisioned meanwhile
    dynsec.write_text('{"clients": [{"username": "device-1"}]}')
    mosquitto.prepare(tmp_path / "mosquitto", config)
    assert "device-1" in dynsec.read_text()


def test_the_operators_own_certificate_is_served(tmp_path, config):
    from octopus_portal.certificates import ensure_certificates
    own = ensure_certificates(tmp_path / "own")
    config.update(MQTT_TLS_CERTFILE=str(own.certfile), MQTT_TLS_KEYFILE=str(own.keyfile),
                  MQTT_TLS_CAFILE=str(own.cafile))
    mosquitto.prepare(tmp_path / "mosquitto", config)
    for name, path in (("server.crt", own.certfile), ("server.key", own.keyfile),
                       ("ca.crt", own.cafile)):
        assert (tmp_path / "mosquitto/tls" / name).read_bytes() == path.read_bytes()
    # the platform CA still exists, but with the operator's CA verifying devices the portal
    # issues no client certificates (the broker would not accept them)
    assert (tmp_path / "tls/ca.crt").exists()
    assert mosquitto.portal_ca_settings(tmp_path / "tls", config) == {
        "MQTT_TLS_CA_CERTFILE": "", "MQTT_TLS_CA_KEYFILE": ""}


def test_the_portal_issues_with_the_platform_ca_by_default(tmp_path, config):
    assert mosquitto.portal_ca_settings(tmp_path / "tls", config) == {
        "MQTT_TLS_CA_CERTFILE": str(tmp_path / "tls/ca.crt"),
        "MQTT_TLS_CA_KEYFILE": str(tmp_path / "tls/ca.key")}


@pytest.mark.parametrize("settings, message", [
    ({"MQTT_TLS_CERTFILE": "/etc/hostname"}, "go together"),
    ({"MQTT_TLS_KEYFILE": "/etc/hostname"}, "go together"),
    ({"MQTT_TLS_CERTFILE": "/nonexistent.crt", "MQTT_TLS_KEYFILE": "/etc/hostname"},
     "MQTT_TLS_CERTFILE=/nonexistent.crt: no such file"),
    ({"MQTT_TLS_CAFILE": "/nonexistent-ca.crt"}, "MQTT_TLS_CAFILE"),
])
def test_incomplete_or_missing_own_files_are_refused(tmp_path, config, settings, message):
    config.update(settings)
    with pytest.raises(ValueError, match=message):
        mosquitto.prepare(tmp_path / "mosquitto", config)
