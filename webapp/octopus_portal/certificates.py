"""The platform's TLS certificates: a development CA, the broker's server certificate signed
by it, and client certificates for devices that use mutual TLS.

Used by the native launcher (launcher/mosquitto.py), by the compose deployment's one-shot
`certificates` service (`python -m octopus_portal.certificates ensure /opt/octopus/tls`,
the broker's image has no Python), and by the portal when it provisions a device.
Keys are EC P-256: fast to make, and every TLS stack a device runs (OpenSSL, mbedTLS,
wolfSSL, BearSSL) speaks it.
"""
import argparse
import datetime
import ipaddress
import os
import re
import secrets
import sys
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650       # a CA change means re-issuing every device certificate: make it rare
SERVER_DAYS = 825    # the longest validity Apple's and other strict clients still accept
CLIENT_DAYS = 825
RENEW_WITHIN_DAYS = 30   # a server certificate this close to its end is renewed at start
ALWAYS = ("localhost", "127.0.0.1")   # local clients (the platform's own, the tests) use these


class TlsFiles(NamedTuple):
    """The files ensure_certificates keeps in its directory."""
    cafile: Path
    ca_keyfile: Path
    certfile: Path
    keyfile: Path


def tls_files(directory):
    directory = Path(directory)
    return TlsFiles(directory / "ca.crt", directory / "ca.key",
                    directory / "server.crt", directory / "server.key")


def parse_hostnames(text):
    """Host names and addresses from a setting: separated by commas and/or spaces."""
    return [name for name in re.split(r"[\s,]+", text or "") if name]


def ensure_certificates(directory, hostnames=(), *, log=lambda message: None, now=None):
    """Make sure `directory` holds the platform CA and a server certificate it signed for
    localhost, 127.0.0.1 and `hostnames`; return their paths (TlsFiles).

    Existing files are kept. The server certificate is issued again when it is missing,
    does not match its key, was signed by a CA other than this one although the CA is ours,
    ends within RENEW_WITHIN_DAYS or lacks one of the names. One that the CA did not sign is
    the operator's own: it is left alone. Keys are written with mode 600.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    files = tls_files(directory)
    if not files.cafile.parent.exists():
        files.cafile.parent.mkdir(parents=True, mode=0o700)
    names = _names([*ALWAYS, *hostnames])

    new_ca = not files.cafile.exists() and not files.ca_keyfile.exists()
    if new_ca:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _ca_certificate(ca_key, now)
        _write(files.ca_keyfile, _key_pem(ca_key), 0o600)
        _write(files.cafile, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
        log(f"certificates: created the platform CA {files.cafile}")
    else:
        for path in (files.cafile, files.ca_keyfile):
            if not path.exists():
                raise FileNotFoundError(
                    f"{path} is missing but its pair is there: restore it, or delete both "
                    f"{files.cafile.name} and {files.ca_keyfile.name} to create a new CA "
                    f"(device certificates issued by the old one then stop working)")
        ca_cert, ca_key = load(files.cafile, files.ca_keyfile)
        if ca_cert.not_valid_after_utc - now < datetime.timedelta(days=RENEW_WITHIN_DAYS):
            log(f"certificates: WARNING the platform CA {files.cafile} ends on "
                f"{ca_cert.not_valid_after_utc:%Y-%m-%d}; delete the folder's files to create a "
                f"new one (doc/security.md, rotating certificates)")

    reason = "new CA" if new_ca else _server_problem(files, ca_cert, names, now)
    if reason == "foreign":
        log(f"certificates: {files.certfile} was not issued by the platform CA: kept as the "
            f"operator's own")
    elif reason:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _leaf(ca_cert, ca_key, key.public_key(),
                     x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Octopus MQTT broker")]),
                     SERVER_DAYS, ExtendedKeyUsageOID.SERVER_AUTH, now,
                     x509.SubjectAlternativeName([_general_name(kind, value)
                                                  for kind, value in names]))
        _write(files.keyfile, _key_pem(key), 0o600)
        _write(files.certfile, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        log(f"certificates: issued the broker's certificate {files.certfile} ({reason}) for "
            + ", ".join(value for _, value in names))
    return files


def issue_client_certificate(ca_certfile, ca_keyfile, common_name, days=CLIENT_DAYS):
    """A new key and a client certificate for `common_name` signed by the CA: (cert_pem,
    key_pem) as text. Nothing is stored; the key is the device's to keep."""
    if not common_name or len(common_name) > 64:
        raise ValueError("a client certificate's common name has 1 to 64 characters")
    ca_cert, ca_key = load(ca_certfile, ca_keyfile)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _leaf(ca_cert, ca_key, key.public_key(),
                 x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
                 days, ExtendedKeyUsageOID.CLIENT_AUTH,
                 datetime.datetime.now(datetime.timezone.utc))
    return (cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            _key_pem(key).decode("ascii"))


def load(certfile, keyfile):
    """(certificate, private key) read from PEM files."""
    cert = x509.load_pem_x509_certificate(Path(certfile).read_bytes())
    key = serialization.load_pem_private_key(Path(keyfile).read_bytes(), password=None)
    return cert, key


# -- building blocks ----------------------------------------------------------------------
def _names(hostnames):
    """[(kind, value)] without duplicates, in order: "ip" for addresses, "dns" for names."""
    seen, names = set(), []
    for name in hostnames:
        try:
            kind, value = "ip", str(ipaddress.ip_address(name))
        except ValueError:
            kind, value = "dns", name.strip().lower().rstrip(".")
        if (kind, value) not in seen:
            seen.add((kind, value))
            names.append((kind, value))
    return names


def _general_name(kind, value):
    return x509.IPAddress(ipaddress.ip_address(value)) if kind == "ip" else x509.DNSName(value)


def _server_problem(files, ca_cert, names, now):
    """Why the server certificate must be issued again, "foreign" if it is not ours to
    renew, None if it is fine."""
    if not files.certfile.exists() or not files.keyfile.exists():
        return "missing"
    try:
        cert, key = load(files.certfile, files.keyfile)
    except ValueError:
        return "unreadable"
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return "foreign"
    if cert.public_key() != key.public_key():
        return "key does not match"
    if cert.not_valid_after_utc - now < datetime.timedelta(days=RENEW_WITHIN_DAYS):
        return f"ends on {cert.not_valid_after_utc:%Y-%m-%d}"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "no subject alternative names"
    have = {("ip", str(a)) for a in san.get_values_for_type(x509.IPAddress)}
    have |= {("dns", d.lower()) for d in san.get_values_for_type(x509.DNSName)}
    missing = [value for kind, value in names if (kind, value) not in have]
    return f"new names: {', '.join(missing)}" if missing else None


def _ca_certificate(key, now):
    # A random suffix: two installations' CAs never share a name, so a machine that trusts
    # both still tells them apart.
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Octopus"),
                      x509.NameAttribute(NameOID.COMMON_NAME,
                                         f"Octopus platform CA {secrets.token_hex(4)}")])
    public = key.public_key()
    return (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256()))


def _leaf(ca_cert, ca_key, public, subject, days, usage, now, san=None):
    """An end-entity certificate (server or client, per `usage`) signed by the CA."""
    builder = (x509.CertificateBuilder()
               .subject_name(subject).issuer_name(ca_cert.subject).public_key(public)
               .serial_number(x509.random_serial_number())
               # a few minutes back: a device whose clock is slightly behind accepts it
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(min(now + datetime.timedelta(days=days),
                                    ca_cert.not_valid_after_utc))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False,
                                            crl_sign=False, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca_key.public_key()), critical=False))
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path, data, mode):
    """Replace `path` atomically; the new file has `mode` from its creation on."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)  # whatever the umask
    os.replace(tmp, path)


# -- command line -------------------------------------------------------------------------
def main(argv=None):
    """`ensure DIR [--hostname NAMES]...` or `client DIR COMMON_NAME [--days N] [--out PREFIX]`."""
    parser = argparse.ArgumentParser(prog="python -m octopus_portal.certificates",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_ensure = sub.add_parser("ensure", help="create or renew the CA and server certificate")
    p_ensure.add_argument("directory")
    p_ensure.add_argument("--hostname", action="append", default=[],
                          help="a name or address of the broker (repeatable; commas and "
                               "spaces separate several); localhost and 127.0.0.1 always")
    p_client = sub.add_parser("client", help="issue a device's client certificate")
    p_client.add_argument("directory", help="the folder that holds ca.crt and ca.key")
    p_client.add_argument("common_name")
    p_client.add_argument("--days", type=int, default=CLIENT_DAYS)
    p_client.add_argument("--out", help="write PREFIX.crt and PREFIX.key (mode 600) "
                                        "instead of printing both")
    args = parser.parse_args(argv)

    def say(message):
        print(f"octopus {message}", flush=True)

    if args.command == "ensure":
        hostnames = [n for text in args.hostname for n in parse_hostnames(text)]
        ensure_certificates(args.directory, hostnames, log=say)
        say(f"certificates: {args.directory} is ready")
        return 0
    files = tls_files(args.directory)
    cert_pem, key_pem = issue_client_certificate(files.cafile, files.ca_keyfile,
                                                 args.common_name, args.days)
    if not args.out:
        sys.stdout.write(cert_pem + key_pem)
        return 0
    _write(Path(args.out + ".crt"), cert_pem.encode(), 0o644)
    _write(Path(args.out + ".key"), key_pem.encode(), 0o600)
    say(f"certificates: wrote {args.out}.crt and {args.out}.key for {args.common_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
