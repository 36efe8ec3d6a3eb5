"""The simulator tests' broker: the shared `mqtt_broker` (the repository's config and ACL)."""
import pytest

# The accounts named in mosquitto/acl: the simulators write anywhere but under octopus/;
# Node-RED's account reads everything, so the tests watch the traffic with it.
SIMULATOR_USER = "octopus-simulator"
READER_USER = "octopus-nodered"


@pytest.fixture
def broker(mqtt_broker):
    assert {SIMULATOR_USER, READER_USER} <= set(mqtt_broker.accounts)
    return mqtt_broker
