"""A real, throwaway Mosquitto for the simulator tests: auth required, the repository's ACL."""
import random
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ROOT, make_state_dir

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
# The accounts named in mosquitto/acl: the simulators write anywhere; Node-RED's account
# reads everything, so the tests watch the traffic with it.
SIMULATOR_USER = "octopus-simulator"
READER_USER = "octopus-nodered"


@dataclass
class Broker:
    host: str
    port: int
    accounts: dict  # user -> password
    log_path: Path

    def log(self):
        return self.log_path.read_text(errors="replace")


def _port_in_test_range():
    """A free port among 57000–57999 (the range these tests may use)."""
    for port in random.sample(range(57000, 58000), 1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 57000–57999")


def _listening(host, port):
    try:
        socket.create_connection((host, port), timeout=0.2).close()
        return True
    except OSError:
        return False


@pytest.fixture
def broker():
    """Mosquitto on 127.0.0.1:<free port>, no anonymous access, hashed passwords, repo ACL."""
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    state = make_state_dir("octopus-sim-broker-")
    accounts = {SIMULATOR_USER: secrets.token_urlsafe(12), READER_USER: secrets.token_urlsafe(12)}
    passwd = state / "passwd"
    passwd.write_text("".join(f"{user}:{pw}\n" for user, pw in accounts.items()))
    subprocess.run(["mosquitto_passwd", "-U", str(passwd)], check=True)
    passwd.chmod(0o644)  # readable after Mosquitto drops from root to its own account
    port = _port_in_test_range()
    conf = state / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous false\n"
        f"password_file {passwd}\n"
        f"acl_file {ROOT / 'mosquitto' / 'acl'}\n"
        "persistence false\n")
    log_path = state / "mosquitto.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log_file,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not _listening("127.0.0.1", port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start:\n{log_path.read_text()}")
            time.sleep(0.05)
        yield Broker("127.0.0.1", port, accounts, log_path)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(state, ignore_errors=True)
