"""Mosquitto run natively from the repository's mosquitto.conf, with its accounts generated."""
import glob
import ipaddress
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
from pathlib import Path

from .settings import flag

REPO_MOSQUITTO = Path(__file__).resolve().parents[1] / "mosquitto"
BROKER_USER = "mosquitto"
# The listeners of mosquitto.conf (the container's ports) and the settings that move them.
LISTENER_SETTINGS = {1883: "MQTT_PORT", 9001: "MQTT_WS_PORT", 8883: "MQTT_TLS_PORT",
                     8884: "MQTT_WSS_PORT"}
TLS_LISTENERS = 2  # 8883 and 8884: each names the certificate, key and CA
# Where Debian (per architecture), the eclipse-mosquitto image and a source build put it.
DYNSEC_PLUGIN_GLOBS = ("/usr/lib/*/mosquitto_dynamic_security.so",
                       "/usr/lib/mosquitto_dynamic_security.so",
                       "/usr/local/lib/mosquitto_dynamic_security.so")
DYNSEC_FILE = "dynamic-security.json"
# The dynamic security plugin's file before the portal provisions anything: no clients,
# groups or roles, and a client it knows may do nothing its roles do not grant. Receiving
# too: the plugin leaves a subscription it does not allow to the ACL file, which lets any
# subscription through (it checks deliveries), so a device subscribed to `#` would receive
# everything if receiving were allowed by default (measured: tests/integration/
# test_device_accounts.py). The same text as docker-entrypoint.sh's.
DYNSEC_DEFAULT_ACCESS = {"publishClientSend": False, "publishClientReceive": False,
                         "subscribe": False, "unsubscribe": True}
DYNSEC_EMPTY = {"defaultACLAccess": DYNSEC_DEFAULT_ACCESS, "clients": [], "groups": [],
                "roles": []}


def render_config(text, *, bind, ports, state_dir, acl_file, plugin,
                  require_client_certificate=False):
    """The committed config with only listener addresses, file paths and the client
    certificate switch made local. `ports` maps each committed listener port to its own."""
    state_dir = Path(state_dir)
    tls = state_dir / "tls"
    replacements = [(rf"^listener {committed}\b.*$", f"listener {port} {bind}", 1)
                    for committed, port in ports.items()]
    replacements += [
        (r"^password_file .*$", f"password_file {state_dir / 'passwd'}", 1),
        (r"^acl_file .*$", f"acl_file {acl_file}", 1),
        (r"^persistence_location .*$", f"persistence_location {state_dir / 'data'}/", 1),
        (r"^plugin .*$", f"plugin {plugin}", 1),
        (r"^plugin_opt_config_file .*$",
         f"plugin_opt_config_file {state_dir / 'data' / DYNSEC_FILE}", 1),
        (r"^certfile .*$", f"certfile {tls / 'server.crt'}", TLS_LISTENERS),
        (r"^keyfile .*$", f"keyfile {tls / 'server.key'}", TLS_LISTENERS),
        (r"^cafile .*$", f"cafile {tls / 'ca.crt'}", TLS_LISTENERS),
        (r"^require_certificate .*$",
         f"require_certificate {'true' if require_client_certificate else 'false'}",
         TLS_LISTENERS),
    ]
    for pattern, line, expected in replacements:
        text, count = re.subn(pattern, line, text, flags=re.M)
        if count != expected:
            raise ValueError(f"mosquitto.conf: expected {expected} line(s) matching "
                             f"{pattern!r}, found {count}")
    return text + f"\n# added by the launcher: the broker's own account when started as root\n" \
                  f"user {broker_user()}\n"


def broker_user():
    """Started as root, Mosquitto drops to this user; otherwise it stays who it is."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        pwd.getpwnam(BROKER_USER)
        return BROKER_USER
    except KeyError:
        return "root"


def dynsec_plugin():
    """The dynamic security plugin's path; it comes with Mosquitto 2 (Debian: `mosquitto`)."""
    for pattern in DYNSEC_PLUGIN_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    raise FileNotFoundError("Mosquitto's dynamic security plugin (mosquitto_dynamic_security.so)"
                            " was not found in /usr/lib: install Mosquitto 2 (Debian 12's "
                            "`mosquitto` package ships it; scripts/install.sh installs it)")


def write_password_file(path, accounts):
    """Write `user:password` lines, then let mosquitto_passwd hash them in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text("".join(f"{user}:{password}\n" for user, password in accounts.items()))
    subprocess.run(["mosquitto_passwd", "-U", str(tmp)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.replace(tmp, path)


def ensure_dynsec_file(path):
    """Create the dynamic security plugin's file when missing; an existing one keeps its
    accounts (the provisioned devices) and gets the platform's default access."""
    path = Path(path)
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(json.dumps(DYNSEC_EMPTY, indent=2) + "\n")
        return
    current = json.loads(path.read_text())
    if current.get("defaultACLAccess") != DYNSEC_DEFAULT_ACCESS:
        current["defaultACLAccess"] = DYNSEC_DEFAULT_ACCESS
        path.write_text(json.dumps(current, indent=2) + "\n")


def server_hostnames(config):
    """Names the broker's certificate is for, besides localhost and 127.0.0.1: this machine's
    name, OCTOPUS_BIND when it is one address, and MQTT_TLS_HOSTNAMES (how devices reach it)."""
    from octopus_portal.certificates import parse_hostnames  # webapp/ is on PYTHONPATH
    names = [socket.gethostname()]
    try:
        if not ipaddress.ip_address(config.get("OCTOPUS_BIND", "")).is_unspecified:
            names.append(config["OCTOPUS_BIND"])
    except ValueError:
        pass  # empty, or a host name
    return names + parse_hostnames(config.get("MQTT_TLS_HOSTNAMES", ""))


def tls_sources(tls_dir, config):
    """(certfile, keyfile, cafile) the broker uses: the operator's from MQTT_TLS_CERTFILE,
    MQTT_TLS_KEYFILE and MQTT_TLS_CAFILE, each empty one taken from `tls_dir`, where the
    platform CA and a server certificate are created (or renewed) first."""
    from octopus_portal.certificates import ensure_certificates
    own_cert, own_key = config.get("MQTT_TLS_CERTFILE", ""), config.get("MQTT_TLS_KEYFILE", "")
    if bool(own_cert) != bool(own_key):
        raise ValueError("MQTT_TLS_CERTFILE and MQTT_TLS_KEYFILE go together: set both (your "
                         "own certificate and its key) or leave both empty (generated)")
    for key in ("MQTT_TLS_CERTFILE", "MQTT_TLS_KEYFILE", "MQTT_TLS_CAFILE"):
        if config.get(key) and not Path(config[key]).is_file():
            raise ValueError(f"{key}={config[key]}: no such file")
    generated = ensure_certificates(tls_dir, server_hostnames(config),
                                    log=lambda message: print(f"octopus: {message}", flush=True))
    return (Path(own_cert or generated.certfile), Path(own_key or generated.keyfile),
            Path(config.get("MQTT_TLS_CAFILE") or generated.cafile))


def portal_ca_settings(tls_dir, config):
    """The CA the portal issues device certificates with: the platform CA in `tls_dir`, or
    none when the operator's own CA (MQTT_TLS_CAFILE) is the one that verifies devices."""
    if config.get("MQTT_TLS_CAFILE"):
        return {"MQTT_TLS_CA_CERTFILE": "", "MQTT_TLS_CA_KEYFILE": ""}
    tls_dir = Path(tls_dir)
    return {"MQTT_TLS_CA_CERTFILE": str(tls_dir / "ca.crt"),
            "MQTT_TLS_CA_KEYFILE": str(tls_dir / "ca.key")}


def install_tls_files(target_dir, certfile, keyfile, cafile):
    """The broker's own copies of its certificate, key and CA (which may belong to someone
    who is not the broker's user, and whose folder it may not enter)."""
    target_dir = Path(target_dir)
    target_dir.mkdir(mode=0o700, exist_ok=True)
    for source, name, mode in ((certfile, "server.crt", 0o644), (keyfile, "server.key", 0o600),
                               (cafile, "ca.crt", 0o644)):
        target = target_dir / name
        target.unlink(missing_ok=True)
        target.touch(mode=mode)
        target.write_bytes(Path(source).read_bytes())


def platform_accounts(config):
    """{user: password} of the platform's own clients; the shared enrolment login only while
    devices may ask for an account (MQTT_ENROLMENT)."""
    kinds = ["NODERED", "PORTAL", "SIMULATOR"]
    if flag(config.get("MQTT_ENROLMENT", "false")):
        kinds.append("ENROL")
    return {config[f"MQTT_{kind}_USER"]: config[f"MQTT_{kind}_PASSWORD"] for kind in kinds}


def prepare(state_dir, config, tls_dir=None):
    """Create the broker's state folder, password file, TLS files and config; return the
    config path. The platform's certificates are kept in `tls_dir` (default: `tls` beside
    the broker's folder, i.e. var/tls)."""
    state_dir = Path(state_dir)
    tls_dir = Path(tls_dir) if tls_dir else state_dir.parent / "tls"
    (state_dir / "data").mkdir(parents=True, exist_ok=True)
    write_password_file(state_dir / "passwd", platform_accounts(config))
    install_tls_files(state_dir / "tls", *tls_sources(tls_dir, config))
    ensure_dynsec_file(state_dir / "data" / DYNSEC_FILE)
    conf = render_config(
        (REPO_MOSQUITTO / "mosquitto.conf").read_text(),
        bind=config["OCTOPUS_BIND"],
        ports={committed: config[key] for committed, key in LISTENER_SETTINGS.items()},
        state_dir=state_dir, acl_file=REPO_MOSQUITTO / "acl", plugin=dynsec_plugin(),
        require_client_certificate=flag(config.get("MQTT_TLS_REQUIRE_CLIENT_CERT", "false")))
    conf_path = state_dir / "mosquitto.conf"
    conf_path.write_text(conf)
    user = broker_user()
    if user not in ("root", pwd.getpwuid(os.geteuid()).pw_name):
        # the broker writes data/ (persistence, the dynamic security file) and reads the rest
        for p in (state_dir, state_dir / "data", state_dir / "passwd", state_dir / "tls",
                  *(state_dir / "tls").iterdir(), *(state_dir / "data").iterdir()):
            shutil.chown(p, user)
    return conf_path


def command(conf_path):
    return [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf_path)]
