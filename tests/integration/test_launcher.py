"""Acceptance 1 (the run command): `./octopus up` brings the platform up on a machine where
the installer has run, Ctrl-C stops every service cleanly, and a second run is safe: same
secrets, data kept."""
import os
import shutil
import signal
import socket
import subprocess
import time

import psycopg
import pytest
import requests
from dotenv import dotenv_values

from launcher.stack import SERVICE_PORTS, free_port
from tests.helpers import ROOT, make_state_dir
from tests.integration.conftest import wait_for



def ignore_ctrl_c():
    """As a shell starts a background job (`./octopus up &` in a script)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_up(env, preexec_fn=None):
    proc = subprocess.Popen([str(ROOT / "octopus"), "up"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=preexec_fn)
    lines = []
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        lines.append(line)
        if "press Ctrl-C" in line or time.monotonic() > deadline:
            break
    assert any("up and running" in line for line in lines), "".join(lines)
    return proc, lines


def stop_with_ctrl_c(proc, ports):
    """Ctrl-C stops every service by its own stop signal, and frees every port."""
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.terminate()  # not left running for the tests after this one
        out, _ = proc.communicate(timeout=90)
        raise AssertionError(f"Ctrl-C did not stop it:\n{out}")
    assert proc.returncode == 0, out
    assert "stopped" in out
    assert "killed it" not in out, out
    for port in ports.values():
        assert port_closed(port), f"port {port} still open after Ctrl-C"


def port_closed(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", int(port))) != 0


@pytest.fixture
def state():
    """The run command's .env (generated secrets) and state folder, removed afterwards."""
    path = make_state_dir("octopus-up-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_run_command_starts_stops_and_restarts_safely(state):
    env = dict(os.environ, OCTOPUS_ENV_FILE=str(state / ".env"),
               OCTOPUS_STATE_DIR=str(state / "var"), SIM_DEVICES="2", SIM_INTERVAL_S="1",
               MODBUS_SIM_DEVICES="1")
    ports = {key: str(free_port()) for key in SERVICE_PORTS}
    env.update(ports)

    proc, lines = start_up(env)
    try:
        printed = "".join(lines)
        assert f"http://127.0.0.1:{ports['PORTAL_PORT']}/" in printed
        assert str(state / ".env") in printed  # where the generated credentials are
        config = dotenv_values(state / ".env")
        assert config["PORTAL_ADMIN_PASSWORD"] and config["MQTT_SIMULATOR_PASSWORD"]
        assert oct(os.stat(state / ".env").st_mode & 0o777) == "0o600"
        portal = f"http://127.0.0.1:{ports['PORTAL_PORT']}"
        assert requests.get(portal + "/login", timeout=10).status_code == 200
        assert requests.get(f"http://127.0.0.1:{ports['NODERED_PORT']}/flows",
                            timeout=10).status_code == 401
        db = dict(host="127.0.0.1", port=ports["PGPORT"], dbname=config["PGDATABASE"],
                  user=config["PGUSER"], password=config["PGPASSWORD"])

        def simulated_readings():
            with psycopg.connect(**db) as conn:
                return conn.execute("SELECT count(*) FROM measurements").fetchone()[0]
        stored = wait_for(simulated_readings, 60, what="the simulators' readings in PostgreSQL")
    finally:
        stop_with_ctrl_c(proc, ports)

    # the second run as a background job, which SIGINT stops all the same
    proc, _ = start_up(env, preexec_fn=ignore_ctrl_c)
    try:
        assert dotenv_values(state / ".env") == config, "second run changed the settings"
        with psycopg.connect(**db) as conn:
            assert conn.execute("SELECT count(*) FROM measurements").fetchone()[0] >= stored
    finally:
        stop_with_ctrl_c(proc, ports)
