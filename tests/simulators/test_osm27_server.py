"""The OSM27 simulator over real TCP, read by pymodbus's own client: values decode to what is
served, each fault looks as it should on the wire, a device stops and starts on its port,
and the command line serves N devices on consecutive ports until SIGINT."""
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from pymodbus.client import AsyncModbusTcpClient, ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException

from octopus_simulators import modbus_profile
from octopus_simulators.modbus_server import DeviceServer
from octopus_simulators.osm27 import Osm27Fleet
from tests.helpers import ROOT, free_port

DEVICES = 3
TIMEOUT_S = 0.5
PROFILE = modbus_profile.load("osm27")
# One Modbus TCP request: read input registers 0..2 (transaction 0x1234, unit 1).
READ_REQUEST = bytes.fromhex("1234 0000 0006 01 04 0000 0003")


@pytest.fixture(scope="module")
def fleet():
    fleet = Osm27Fleet(count=DEVICES, ports=[0] * DEVICES, seed=1, tick_s=0.1).start()
    yield fleet
    fleet.stop()


@pytest.fixture
def device(fleet):
    """Device 1 of the fleet (0-based), back to normal after the test."""
    yield 1
    fleet.set_fault(1, "none")
    fleet.start_device(1)
    fleet.set_state(1, "closed")
    fleet.hold(False)


def client(port, timeout=TIMEOUT_S):
    c = ModbusTcpClient("127.0.0.1", port=port, timeout=timeout, retries=0)
    assert c.connect(), f"cannot connect to port {port}"
    return c


def read_all(c, unit=1):
    """Every attribute of the profile, read and decoded by pymodbus's converters."""
    blocks = {}
    for kind, read in (("input", c.read_input_registers), ("holding", c.read_holding_registers)):
        attributes = PROFILE.by_kind(kind)
        first = attributes[0].address
        count = max(a.address + a.size for a in attributes) - first
        response = read(first, count=count, device_id=unit)
        assert not response.isError(), response
        blocks[kind] = (first, response.registers)
    values = {}
    for a in PROFILE.attributes:
        first, registers = blocks[a.register]
        raw = c.convert_from_registers(registers[a.address - first:a.address - first + a.size],
                                       c.DATATYPE[a.type.upper()], word_order=a.word_order)
        values[a.name] = a.states[raw] if a.states else raw * a.scale + a.offset
    return values, blocks


def test_a_port_in_use_stops_the_start_with_a_message(fleet):
    second = Osm27Fleet(count=2, ports=[0, fleet.ports[0]], seed=2)
    with pytest.raises(OSError, match=f"osm27-2: cannot listen on 127.0.0.1:{fleet.ports[0]}"):
        second.start()
    assert second._loop is None, "a failed start leaves no thread behind"


def test_each_device_serves_its_values_as_the_profile_lays_them_out(fleet):
    fleet.hold(True)
    try:
        for i, port in enumerate(fleet.ports):
            c = client(port)
            values, blocks = read_all(c)
            c.close()
            served = fleet.values(i)
            assert set(served) == set(values)
            for a in PROFILE.attributes:
                if a.states:
                    assert values[a.name] == served[a.name]
                elif a.type == "float32":
                    assert values[a.name] == pytest.approx(served[a.name], rel=1e-7)
                else:   # exactly the served value, so within the scale's rounding too
                    assert values[a.name] == pytest.approx(served[a.name], abs=a.scale / 2)
            assert fleet.registers(i) == blocks
        assert len({fleet.values(i)["ia"] for i in range(DEVICES)}) == DEVICES, "alike devices"
    finally:
        fleet.hold(False)


def test_values_are_realistic_and_change_unless_held(fleet, device):
    c = client(fleet.ports[device])
    v, _ = read_all(c)
    assert v["estado"] == "closed"
    amps = [v["ia"], v["ib"], v["ic"]]
    assert 40 < min(amps) and max(amps) < 260 and max(amps) / min(amps) < 1.1
    assert all(abs(v[k] / 13_221 - 1) < 0.011 for k in ("va", "vb", "vc"))
    assert 0.92 <= v["fp"] <= 0.98
    assert v["fp"] == pytest.approx(v["p_act"] / (v["p_act"] ** 2 + v["p_react"] ** 2) ** 0.5,
                                    abs=1e-5)
    s_kva = sum(v[u] * v[i] for u, i in (("va", "ia"), ("vb", "ib"), ("vc", "ic"))) / 1000
    assert v["p_act"] == pytest.approx(s_kva * v["fp"], rel=0.002)   # within the rounding
    time.sleep(0.3)
    assert read_all(c)[0] != v, "values should change every tick"
    fleet.hold(True)
    held, _ = read_all(c)
    time.sleep(0.3)
    assert read_all(c)[0] == held == pytest.approx(fleet.values(device))
    c.close()


def test_any_unit_id_is_answered(fleet):
    c = client(fleet.ports[0])
    for unit in (0, 1, 17, 247):
        response = c.read_holding_registers(100, count=1, device_id=unit)
        assert not response.isError() and response.dev_id == unit
    c.close()


def test_a_forced_trip_is_served_as_open_with_zero_currents(fleet, device):
    fleet.set_state(device, "open")
    c = client(fleet.ports[device])
    v, blocks = read_all(c)
    assert v["estado"] == "open" and blocks["holding"] == (100, [0])
    assert v["ia"] == v["ib"] == v["ic"] == v["p_act"] == v["p_react"] == v["fp"] == 0
    assert v["va"] > 13_000
    fleet.set_state(device, "lockout")
    assert read_all(c)[0]["estado"] == "lockout"
    fleet.set_state(device, "closed")
    assert read_all(c)[0]["ia"] > 0
    c.close()


def test_unmapped_addresses_and_writes_get_exception_2(fleet):
    c = client(fleet.ports[0])
    for response in (c.read_holding_registers(0, count=1), c.read_input_registers(14, count=2),
                     c.read_coils(0, count=1), c.write_register(100, 2)):
        assert response.isError() and response.exception_code == 2, response
    c.close()


def test_exception_mode_answers_every_request_with_code_4(fleet, device):
    fleet.set_fault(device, "exception")
    c = client(fleet.ports[device])
    for response in (c.read_input_registers(0, count=3), c.read_holding_registers(100, count=1),
                     c.read_holding_registers(0, count=1), c.read_coils(0, count=1)):
        assert response.isError() and response.exception_code == 4, response
    c.close()
    other = client(fleet.ports[0])        # the other devices are not affected
    assert not other.read_input_registers(0, count=3).isError()
    other.close()


def test_no_answer_mode_lets_the_client_time_out(fleet, device):
    fleet.set_fault(device, "no-answer")
    c = client(fleet.ports[device])
    started = time.monotonic()
    with pytest.raises(ModbusIOException, match="No response"):
        c.read_input_registers(0, count=3)
    assert time.monotonic() - started >= TIMEOUT_S * 0.9
    c.close()
    fleet.set_fault(device, "none")
    c = client(fleet.ports[device])
    assert not c.read_input_registers(0, count=3).isError()
    c.close()


def test_disconnect_mode_closes_the_connection_on_a_request(fleet, device):
    fleet.set_fault(device, "disconnect")
    c = client(fleet.ports[device])
    with pytest.raises(ConnectionException, match="closed"):
        c.read_input_registers(0, count=3)
    c.close()
    with socket.create_connection(("127.0.0.1", fleet.ports[device]), timeout=2) as s:
        s.sendall(READ_REQUEST)
        assert s.recv(100) == b"", "expected the server to close (EOF), not answer"


def test_garbage_mode_answers_with_a_malformed_frame(fleet, device):
    fleet.set_fault(device, "garbage")
    c = client(fleet.ports[device])
    started = time.monotonic()
    with pytest.raises(ModbusIOException, match="Unable to decode"):
        c.read_input_registers(0, count=3)
    assert time.monotonic() - started < TIMEOUT_S, "garbage must not look like a timeout"
    c.close()
    with socket.create_connection(("127.0.0.1", fleet.ports[device]), timeout=2) as s:
        s.sendall(READ_REQUEST)
        answer = s.recv(300)
    # The MBAP header is sound (same transaction and unit, length matching the bytes sent)
    # but the PDU claims 255 bytes of registers and carries only a few.
    assert answer[:4] == bytes.fromhex("1234 0000") and answer[6:8] == bytes.fromhex("01 04")
    assert int.from_bytes(answer[4:6], "big") == len(answer) - 6
    assert answer[8] == 255 and len(answer) - 9 < 255


def test_a_stopped_device_refuses_connections_then_serves_again_on_its_port(fleet, device):
    port = fleet.ports[device]
    c = client(port)
    assert not c.read_input_registers(0, count=3).isError()    # served: an open connection
    fleet.stop_device(device)
    with pytest.raises(ConnectionException):     # the open connection was closed
        c.read_input_registers(0, count=3)
    c.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    fleet.start_device(device)
    assert fleet.ports[device] == port
    c = client(port)
    assert not c.read_input_registers(0, count=3).isError()
    c.close()


def test_a_device_with_coils_and_discrete_inputs_serves_them(tmp_path):
    """The server is not osm27-specific: any profile, bit kinds and byte order included."""
    (tmp_path / "mix.json").write_text(json.dumps({"model": "mix", "attributes": [
        {"name": "breaker", "register": "coil", "address": 19},
        {"name": "door", "register": "discrete", "address": 3,
         "states": {"0": "shut", "1": "open"}},
        {"name": "temp", "register": "input", "address": 10, "type": "int16", "scale": 0.5,
         "offset": -40},
        {"name": "energy", "register": "holding", "address": 4, "type": "float32",
         "word_order": "little", "byte_order": "little"}]}))
    profile = modbus_profile.load("mix", tmp_path)

    async def scenario():
        server = DeviceServer("mix-1", profile, "127.0.0.1", 0, rng=None)
        server.update({"breaker": True, "door": "open", "temp": -12.5, "energy": 1234.5})
        await server.start()
        c = AsyncModbusTcpClient("127.0.0.1", port=server.port, timeout=2, retries=0)
        await c.connect()
        try:
            coils = (await c.read_coils(16, count=8)).bits
            door = (await c.read_discrete_inputs(3, count=1)).bits[0]
            temp = (await c.read_input_registers(10, count=1)).registers
            energy = (await c.read_holding_registers(4, count=2)).registers
            return coils, door, temp, energy
        finally:
            c.close()
            await server.stop()

    coils, door, temp, energy = asyncio.run(scenario())
    assert coils[:4] == [False, False, False, True] and door is True
    temp = ModbusTcpClient.convert_from_registers(temp, ModbusTcpClient.DATATYPE.INT16)
    assert temp * 0.5 - 40 == -12.5
    swapped = [((r & 0xFF) << 8) | (r >> 8) for r in energy]
    assert ModbusTcpClient.convert_from_registers(
        swapped, ModbusTcpClient.DATATYPE.FLOAT32, word_order="little") == 1234.5


# -- the command line ---------------------------------------------------------------------
def consecutive_free_ports(n):
    for _ in range(20):
        base = free_port()
        if base + n > 65535:
            continue
        try:
            for port in range(base, base + n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError(f"no {n} consecutive free ports")


def start_cli(*args, **env):
    return subprocess.Popen(
        [sys.executable, "-m", "octopus_simulators.osm27", *args],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT / "simulators"), **env),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_line(process, text, timeout=10):
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    process.kill()
    raise AssertionError(f"no {text!r} in the output:\n{''.join(lines)}")


def test_the_command_line_serves_n_devices_on_consecutive_ports_until_sigint():
    base = consecutive_free_ports(3)
    sim = start_cli("--devices", "3", "--seed", "4", "--fault", "2=exception",
                    "--fault", "3=down", MODBUS_SIM_PORT=str(base), MODBUS_SIM_HOST="127.0.0.1")
    try:
        lines = wait_for_line(sim, "3 osm27 devices on 127.0.0.1")
        assert any(f"osm27-1 serving Modbus TCP on 127.0.0.1:{base}" in line for line in lines)
        c = client(base)
        assert not c.read_input_registers(0, count=15).isError()
        c.close()
        c = client(base + 1)
        assert c.read_input_registers(0, count=15).exception_code == 4
        c.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", base + 2), timeout=2)
        sim.send_signal(signal.SIGINT)
        output, _ = sim.communicate(timeout=10)
    finally:
        if sim.poll() is None:
            sim.kill()
    assert sim.returncode == 0, output
    assert "SIGINT received: stopping" in output and "stopped" in output
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", base), timeout=2)


@pytest.mark.parametrize("args, env, message", [
    (["--devices", "2", "--fault", "3=exception"], {}, "--fault '3=exception' is not valid"),
    (["--fault", "1=broken"], {}, "--fault '1=broken' is not valid"),
    ([], {"MODBUS_SIM_DEVICES": "none"}, "MODBUS_SIM_DEVICES='none' is not valid"),
    (["--port", "65535", "--devices", "2"], {}, "go past port 65535"),
    ([], {"MODBUS_SIM_PROFILE": "nope"}, "nope.json: no such profile"),
])
def test_the_command_line_refuses_bad_settings(args, env, message):
    sim = start_cli(*args, **env)
    output, _ = sim.communicate(timeout=10)
    assert sim.returncode == 2 and message in output, output
