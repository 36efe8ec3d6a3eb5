"""The mosquitto service's entrypoint and healthcheck, run as in the container without Docker.

Private mount, network and PID namespaces with a chroot stand in for the container (when the
scenario's shell ends, the kernel ends whatever it left running): the
repository's mosquitto/ folder read-only at /octopus/mosquitto, an empty /mosquitto/config
and /mosquitto/data, /octopus/tls as the certificates service leaves it (files of another
user, keys mode 600), the host's /usr and /etc (Debian's Mosquitto 2.0 instead of the image's
Alpine build, so the dynamic security plugin is at Debian's path, not the image's), and a
loopback of its own, so the broker listens on 1883, 9001, 8883 and 8884 as in the container
without touching the host's ports.
"""
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from launcher.mosquitto import DYNSEC_EMPTY
from octopus_portal.certificates import ensure_certificates
from tests.helpers import ROOT

ACCOUNTS = {"NODERED": "n0de-pw", "PORTAL": "p0rtal-pw", "SIMULATOR": "s1m-pw"}

# Runs inside the namespaces; $1 is the fake root. Prints `name=rc` lines for the test.
SCENARIO = r"""
set -u
R=$1
mount --make-rprivate /
for d in usr etc dev; do mount --rbind /$d "$R/$d"; done
mount --bind "$OCTOPUS_REPO/mosquitto" "$R/octopus/mosquitto"
mount -o remount,bind,ro "$R/octopus/mosquitto"
ip link set lo up

in_container() { chroot "$R" /bin/sh "$@"; }

MQTT_PORTAL_PASSWORD= in_container /octopus/mosquitto/docker-entrypoint.sh true \
    >"$R/tmp/refused.log" 2>&1
echo "empty_secret=$?"

# not through the function: $! must be the broker itself (chroot, sh and the entrypoint exec)
chroot "$R" /bin/sh /octopus/mosquitto/docker-entrypoint.sh \
    /usr/sbin/mosquitto -c /mosquitto/config/mosquitto.conf >"$R/tmp/broker.log" 2>&1 &
broker=$!
healthy=1
for _ in $(seq 50); do
    if in_container /octopus/mosquitto/healthcheck.sh >/dev/null 2>&1; then healthy=0; break; fi
    sleep 0.2
done
echo "healthcheck=$healthy"
MQTT_NODERED_PASSWORD=wrong in_container /octopus/mosquitto/healthcheck.sh >/dev/null 2>&1
echo "wrong_password=$?"
# the simulator's account may publish a device status; the portal's may not (ACL)
mosquitto_pub -h 127.0.0.1 -p 1883 -u "$MQTT_SIMULATOR_USER" -P "$MQTT_SIMULATOR_PASSWORD" \
    -q 1 -r -t test/room/dev/status -m online
echo "simulator_publish=$?"
got=$(mosquitto_sub -h 127.0.0.1 -p 1883 -u "$MQTT_NODERED_USER" -P "$MQTT_NODERED_PASSWORD" \
    -t test/room/dev/status -C 1 -W 3)
echo "retained_status=$got"
# over TLS, verifying the broker's certificate against the platform CA
mosquitto_pub -h 127.0.0.1 -p 8883 --cafile "$R/octopus/tls/ca.crt" -q 1 \
    -u "$MQTT_SIMULATOR_USER" -P "$MQTT_SIMULATOR_PASSWORD" -t test/room/dev/tls -m 1
echo "tls_publish=$?"
# the portal's account administers the dynamic security plugin, which saves to its file
mosquitto_ctrl -h 127.0.0.1 -p 1883 -u "$MQTT_PORTAL_USER" -P "$MQTT_PORTAL_PASSWORD" \
    dynsec createClient test-device -p device-pw >/dev/null
echo "dynsec_create=$?"
kill "$broker"
wait "$broker"
echo "broker_exit=$?"
# mutual TLS switched on at the next start; a wrong value is refused
MQTT_TLS_REQUIRE_CLIENT_CERT=true in_container /octopus/mosquitto/docker-entrypoint.sh true \
    >"$R/tmp/mutual.log" 2>&1
echo "mutual_tls=$?"
echo "require_certificate_true=$(grep -c '^require_certificate true$' \
    "$R/mosquitto/config/mosquitto.conf")"
MQTT_TLS_REQUIRE_CLIENT_CERT=maybe in_container /octopus/mosquitto/docker-entrypoint.sh true \
    >/dev/null 2>&1
echo "bad_flag=$?"
"""


def namespaces_available():
    if os.geteuid() != 0 or not all(shutil.which(tool) for tool in
                                    ("unshare", "chroot", "ip", "mosquitto_pub", "mosquitto_sub",
                                     "mosquitto_passwd", "mosquitto_ctrl")):
        return False
    if not Path("/usr/sbin/mosquitto").exists():
        return False
    probe = subprocess.run(["unshare", "--mount", "--net", "--pid", "--fork", "true"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not namespaces_available(),
                    reason="needs root, unshare (mount, network and PID namespaces), iproute2 and "
                           "Debian's mosquitto with its clients")
def test_entrypoint_writes_the_password_file_and_the_healthcheck_does_a_round_trip():
    root = Path(tempfile.mkdtemp(prefix="octopus-mosquitto-root-"))
    root.chmod(0o755)  # the broker drops to its own account and must traverse /
    try:
        for folder in ("usr", "etc", "dev", "tmp", "mosquitto/config", "mosquitto/data",
                       "octopus/mosquitto"):
            (root / folder).mkdir(parents=True)
        for link in ("bin", "sbin", "lib", "lib64"):
            (root / link).symlink_to(f"usr/{link}")
        # as the certificates service leaves the volume: the portal image's user owns it
        tls = ensure_certificates(root / "octopus/tls")
        for path in (root / "octopus/tls", *tls):
            os.chown(path, 12345, 12345)
        env = dict(os.environ, OCTOPUS_REPO=str(ROOT))
        for account, password in ACCOUNTS.items():
            env[f"MQTT_{account}_USER"] = f"octopus-{account.lower()}"
            env[f"MQTT_{account}_PASSWORD"] = password
        result = subprocess.run(
            ["timeout", "60", "unshare", "--mount", "--net", "--pid", "--fork",
             "sh", "-c", SCENARIO, "scenario", str(root)],
            env=env, capture_output=True, text=True)
        lines = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
        broker_log = (root / "tmp/broker.log").read_text(errors="replace")
        context = f"{result.stdout}\n{result.stderr}\n--- broker log ---\n{broker_log}"

        assert lines.get("empty_secret") == "1", context
        assert "MQTT_PORTAL_PASSWORD is empty" in (root / "tmp/refused.log").read_text()
        assert lines.get("healthcheck") == "0", context
        assert lines.get("wrong_password") == "1", context
        assert lines.get("simulator_publish") == "0", context
        assert lines.get("retained_status") == "online", context
        assert lines.get("broker_exit") == "0", context
        assert lines.get("tls_publish") == "0", context
        assert lines.get("dynsec_create") == "0", context
        assert lines.get("mutual_tls") == "0", context
        assert lines.get("require_certificate_true") == "2", context  # both TLS listeners
        assert lines.get("bad_flag") == "1", context

        config = root / "mosquitto/config"
        passwd = (config / "passwd").read_text()
        assert [line.split(":")[0] for line in passwd.splitlines()] == [
            "octopus-nodered", "octopus-portal", "octopus-simulator"]
        assert all(password not in passwd for password in ACCOUNTS.values()), "hashed"
        assert (config / "passwd").stat().st_mode & 0o077 == 0
        assert (config / "acl").read_text() == (ROOT / "mosquitto/acl").read_text()
        assert "written with 3 accounts" in broker_log
        assert "Error" not in broker_log, broker_log
        assert (root / "mosquitto/data/mosquitto.db").exists(), "persistence in /mosquitto/data"
        dynsec = json.loads((root / "mosquitto/data/dynamic-security.json").read_text())
        assert [c["username"] for c in dynsec["clients"]] == ["test-device"], "saved, and kept"
        # created as the native launcher creates it
        assert dynsec["defaultACLAccess"] == DYNSEC_EMPTY["defaultACLAccess"]
        broker_uid = pwd.getpwnam("mosquitto").pw_uid
        key = (config / "tls/server.key").stat()
        assert (key.st_uid, key.st_mode & 0o777) == (broker_uid, 0o600)
        assert (config / "tls/server.crt").read_bytes() == tls.certfile.read_bytes()
    finally:
        remove_fake_root(root)


def remove_fake_root(root):
    """Delete the fake root, but only if none of the host's folders is still mounted in it."""
    for folder in ("usr", "etc", "dev", "octopus/mosquitto"):
        path = root / folder
        if path.is_mount() or (path.is_dir() and any(path.iterdir())):
            raise RuntimeError(f"{path} is still a mount: left in place, remove it by hand")
    shutil.rmtree(root)
