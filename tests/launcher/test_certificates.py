"""The platform CA, the broker's certificate and devices' client certificates
(octopus_portal.certificates), checked with cryptography's RFC 5280 path validation."""
import datetime
import ipaddress
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import (DNSName, IPAddress, PolicyBuilder, Store,
                                             VerificationError)

from octopus_portal import certificates



def now():
    # at the moment of the check: a module-level constant is minutes old in a long run,
    # older than a certificate a test has just made
    return datetime.datetime.now(datetime.timezone.utc)


def server_verifier(files, name, when=None):
    """A verifier for `name`, at `when` (default: now)."""
    when = when or now()
    ca = x509.load_pem_x509_certificate(files.cafile.read_bytes())
    try:
        subject = IPAddress(ipaddress.ip_address(name))
    except ValueError:
        subject = DNSName(name)
    return PolicyBuilder().store(Store([ca])).time(when).build_server_verifier(subject)


def server_cert(files):
    return x509.load_pem_x509_certificate(files.certfile.read_bytes())


def sans(cert):
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)) | {
        str(a) for a in san.get_values_for_type(x509.IPAddress)}


def test_a_first_run_makes_a_ca_and_a_server_certificate_for_every_name(tmp_path):
    files = certificates.ensure_certificates(tmp_path / "tls", ["Broker.Example", "192.0.2.7"])
    assert sans(server_cert(files)) == {"localhost", "127.0.0.1", "broker.example", "192.0.2.7"}
    for name in ("localhost", "127.0.0.1", "broker.example", "192.0.2.7"):
        chain = server_verifier(files, name).verify(server_cert(files), [])
        assert chain[-1].subject == x509.load_pem_x509_certificate(
            files.cafile.read_bytes()).subject
    with pytest.raises(VerificationError):  # the control: a name it was not issued for
        server_verifier(files, "other.example").verify(server_cert(files), [])


def test_keys_are_private_and_certificates_readable(tmp_path):
    files = certificates.ensure_certificates(tmp_path / "tls")
    modes = {path.name: path.stat().st_mode & 0o777 for path in files}
    assert modes == {"ca.crt": 0o644, "ca.key": 0o600, "server.crt": 0o644, "server.key": 0o600}
    assert (tmp_path / "tls").stat().st_mode & 0o777 == 0o700
    assert not list((tmp_path / "tls").glob(".*"))  # no temporary files left behind


def test_a_second_run_keeps_every_file(tmp_path):
    first = certificates.ensure_certificates(tmp_path / "tls", ["a.example"])
    before = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in first}
    second = certificates.ensure_certificates(tmp_path / "tls", ["a.example"])
    assert second == first
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in second} == before


def test_a_new_name_renews_the_server_certificate_and_keeps_the_ca(tmp_path):
    files = certificates.ensure_certificates(tmp_path / "tls", ["a.example"])
    ca, old = files.cafile.read_bytes(), files.certfile.read_bytes()
    certificates.ensure_certificates(tmp_path / "tls", ["a.example", "b.example"])
    assert files.cafile.read_bytes() == ca and files.certfile.read_bytes() != old
    server_verifier(files, "b.example").verify(server_cert(files), [])


def test_a_server_certificate_near_its_end_is_renewed(tmp_path):
    files = certificates.ensure_certificates(tmp_path / "tls")
    ends = server_cert(files).not_valid_after_utc
    ca = files.cafile.read_bytes()
    # a day before the renewal window: kept
    certificates.ensure_certificates(tmp_path / "tls", now=ends - datetime.timedelta(
        days=certificates.RENEW_WITHIN_DAYS + 1))
    assert server_cert(files).not_valid_after_utc == ends
    # inside it: renewed, valid long after the old one's end, signed by the same CA
    later = ends - datetime.timedelta(days=certificates.RENEW_WITHIN_DAYS - 1)
    messages = []
    certificates.ensure_certificates(tmp_path / "tls", now=later, log=messages.append)
    assert server_cert(files).not_valid_after_utc > ends + datetime.timedelta(days=365)
    assert files.cafile.read_bytes() == ca
    assert any("ends on" in m for m in messages), messages
    server_verifier(files, "localhost", when=later).verify(server_cert(files), [])


def test_an_expired_server_certificate_is_renewed(tmp_path):
    files = certificates.ensure_certificates(tmp_path / "tls")
    ends = server_cert(files).not_valid_after_utc
    after = ends + datetime.timedelta(days=1)
    with pytest.raises(VerificationError):  # the control: expired as seen from then
        server_verifier(files, "localhost", when=after).verify(server_cert(files), [])
    certificates.ensure_certificates(tmp_path / "tls", now=after)
    server_verifier(files, "localhost", when=after).verify(server_cert(files), [])


def test_a_server_certificate_with_another_key_is_issued_again(tmp_path):
    files = certificates.ensure_certificates(tmp_path / "tls")
    other = certificates.ensure_certificates(tmp_path / "other")
    files.keyfile.write_bytes(other.keyfile.read_bytes())
    certificates.ensure_certificates(tmp_path / "tls")
    cert, key = certificates.load(files.certfile, files.keyfile)
    assert cert.public_key() == key.public_key()


def test_the_operators_own_server_certificate_is_left_alone(tmp_path):
    files = certificates.ensure_certificates(tmp_path / "tls")
    own = certificates.ensure_certificates(tmp_path / "own")  # signed by another CA
    for name in ("certfile", "keyfile"):
        getattr(files, name).write_bytes(getattr(own, name).read_bytes())
    messages = []
    certificates.ensure_certificates(tmp_path / "tls", ["new.example"], log=messages.append)
    assert files.certfile.read_bytes() == own.certfile.read_bytes()
    assert any("operator's own" in m for m in messages), messages


def test_a_missing_ca_key_is_an_error_not_a_new_ca(tmp_path):
    files = certificates.ensure_certificates(tmp_path / "tls")
    ca = files.cafile.read_bytes()
    files.ca_keyfile.unlink()
    with pytest.raises(FileNotFoundError, match="ca.key"):
        certificates.ensure_certificates(tmp_path / "tls")
    assert files.cafile.read_bytes() == ca


def tls_handshake(ca_file, client_cert=None, client_key=None):
    """A TLS 1.2+ handshake through OpenSSL, as Mosquitto does it with `require_certificate
    true` and `cafile`: a server that demands a client certificate signed by `ca_file`.
    Returns what the server saw: the client certificate's subject, or the error."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    server_files = certificates.ensure_certificates(Path(ca_file).parent)
    server_ctx.load_cert_chain(server_files.certfile, server_files.keyfile)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_verify_locations(ca_file)
    client_ctx = ssl.create_default_context(cafile=server_files.cafile)
    if client_cert:
        client_ctx.load_cert_chain(client_cert, client_key)
    server_side, client_side = socket.socketpair()
    seen = {}

    def serve():
        try:
            with server_ctx.wrap_socket(server_side, server_side=True) as tls:
                seen["subject"] = dict(item[0] for item in tls.getpeercert()["subject"])
        except (ssl.SSLError, OSError) as exc:
            seen["error"] = exc

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_ctx.wrap_socket(client_side, server_hostname="localhost") as tls:
            tls.settimeout(5)
            tls.recv(1)  # the server closes; a refusal arrives here as an alert
    except (ssl.SSLError, OSError):
        pass
    thread.join(10)
    return seen


def write_pair(folder, name, pair):
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_text(pair[0])
    key_path.write_text(pair[1])
    return cert_path, key_path


def test_a_client_certificate_is_accepted_by_a_server_that_trusts_the_ca(tmp_path):
    files = certificates.ensure_certificates(tmp_path / "tls")
    pair = certificates.issue_client_certificate(
        files.cafile, files.ca_keyfile, "planta-linea1-interruptor1", days=30)
    cert = x509.load_pem_x509_certificate(pair[0].encode())
    key = certificates.serialization.load_pem_private_key(pair[1].encode(), password=None)
    assert cert.public_key() == key.public_key()
    assert cert.subject.rfc4514_string() == "CN=planta-linea1-interruptor1"
    assert cert.not_valid_after_utc - now() < datetime.timedelta(days=31)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]

    cert_path, key_path = write_pair(tmp_path, "device", pair)
    seen = tls_handshake(files.cafile, cert_path, key_path)
    assert seen == {"subject": {"commonName": "planta-linea1-interruptor1"}}
    # the controls: no certificate, and one of another CA, are refused by the same server
    assert "error" in tls_handshake(files.cafile)
    other = certificates.ensure_certificates(tmp_path / "other")
    stranger = write_pair(tmp_path, "stranger", certificates.issue_client_certificate(
        other.cafile, other.ca_keyfile, "planta-linea1-interruptor1"))
    assert "error" in tls_handshake(files.cafile, *stranger)


def test_a_client_certificate_is_no_server_certificate(tmp_path):
    files = certificates.ensure_certificates(tmp_path / "tls")
    cert_pem, _ = certificates.issue_client_certificate(files.cafile, files.ca_keyfile, "x")
    ca = x509.load_pem_x509_certificate(files.cafile.read_bytes())
    with pytest.raises(VerificationError):
        PolicyBuilder().store(Store([ca])).time(now()).build_server_verifier(
            DNSName("localhost")).verify(x509.load_pem_x509_certificate(cert_pem.encode()), [])


@pytest.mark.parametrize("name", ["", "x" * 65])
def test_a_client_certificate_needs_a_common_name_of_1_to_64_characters(tmp_path, name):
    files = certificates.ensure_certificates(tmp_path / "tls")
    with pytest.raises(ValueError, match="1 to 64"):
        certificates.issue_client_certificate(files.cafile, files.ca_keyfile, name)


def test_the_command_line_makes_the_folder_and_a_device_certificate(tmp_path, capsys):
    folder = str(tmp_path / "tls")
    assert certificates.main(["ensure", folder, "--hostname", "mosquitto",
                              "--hostname", "mqtt.example, 192.0.2.9", "--hostname", ""]) == 0
    files = certificates.tls_files(folder)
    assert sans(server_cert(files)) == {"localhost", "127.0.0.1", "mosquitto", "mqtt.example",
                                        "192.0.2.9"}
    assert certificates.main(["client", folder, "device-1", "--out",
                              str(tmp_path / "device-1")]) == 0
    assert (tmp_path / "device-1.key").stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate((tmp_path / "device-1.crt").read_bytes())
    assert cert.issuer == server_cert(files).issuer
    capsys.readouterr()
    assert certificates.main(["client", folder, "device-2"]) == 0
    printed = capsys.readouterr().out
    assert "BEGIN CERTIFICATE" in printed and "BEGIN PRIVATE KEY" in printed
