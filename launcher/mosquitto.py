"""Mosquitto run natively from the repository's mosquitto.conf, with its accounts generated."""
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

REPO_MOSQUITTO = Path(__file__).resolve().parents[1] / "mosquitto"
BROKER_USER = "mosquitto"


def render_config(text, *, bind, port, ws_port, state_dir, acl_file):
    """The committed config with only listener addresses and file paths made local."""
    state_dir = Path(state_dir)
    replacements = {
        r"^listener 1883\b.*$": f"listener {port} {bind}",
        r"^listener 9001\b.*$": f"listener {ws_port} {bind}",
        r"^password_file .*$": f"password_file {state_dir / 'passwd'}",
        r"^acl_file .*$": f"acl_file {acl_file}",
        r"^persistence_location .*$": f"persistence_location {state_dir / 'data'}/",
    }
    for pattern, line in replacements.items():
        text, count = re.subn(pattern, line, text, flags=re.M)
        if count != 1:
            raise ValueError(f"mosquitto.conf: expected one line matching {pattern!r}")
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


def prepare(state_dir, config):
    """Create the broker's state folder, password file and config; return the config path."""
    state_dir = Path(state_dir)
    (state_dir / "data").mkdir(parents=True, exist_ok=True)
    write_password_file(state_dir / "passwd", {
        config["MQTT_NODERED_USER"]: config["MQTT_NODERED_PASSWORD"],
        config["MQTT_PORTAL_USER"]: config["MQTT_PORTAL_PASSWORD"],
        config["MQTT_SIMULATOR_USER"]: config["MQTT_SIMULATOR_PASSWORD"],
    })
    conf = render_config(
        (REPO_MOSQUITTO / "mosquitto.conf").read_text(),
        bind=config["OCTOPUS_BIND"], port=config["MQTT_PORT"],
        ws_port=config["MQTT_WS_PORT"], state_dir=state_dir,
        acl_file=REPO_MOSQUITTO / "acl")
    conf_path = state_dir / "mosquitto.conf"
    conf_path.write_text(conf)
    user = broker_user()
    if user not in ("root", pwd.getpwuid(os.geteuid()).pw_name):
        for p in (state_dir, state_dir / "data", state_dir / "passwd"):
            shutil.chown(p, user)
        for p in (state_dir / "data").iterdir():
            shutil.chown(p, user)
    return conf_path


def command(conf_path):
    return [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf_path)]
