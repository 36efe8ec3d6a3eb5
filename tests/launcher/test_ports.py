"""Free ports for a platform that runs beside another (the tests', the benchmark's)."""
import socket

from launcher.stack import SERVICE_PORTS, free_ports, isolated_config


def test_ports_picked_together_are_all_different_and_free():
    ports = free_ports(200)
    assert len(set(ports)) == 200
    for port in ports[:5]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # nobody holds it any more


def test_an_isolated_platform_gets_a_different_port_for_every_service():
    config = isolated_config()
    assert len({config[key] for key in SERVICE_PORTS}) == len(SERVICE_PORTS)
