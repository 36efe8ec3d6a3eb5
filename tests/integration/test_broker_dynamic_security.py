"""Issue 7, broker side of device accounts: Mosquitto's dynamic security plugin runs beside the
password file, is administered over $CONTROL by the portal's account only, and what it holds
survives a restart of the broker prepared again by the launcher's code."""
import json
import queue
import uuid

import paho.mqtt.client as mqtt

from launcher import mosquitto

CONTROL = "$CONTROL/dynamic-security/v1"


def client(broker, username, password):
    """A connected MQTT 5 client (loop running) or the failed CONNACK's reason code."""
    connack = queue.Queue()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}",
                    protocol=mqtt.MQTTv5, reconnect_on_failure=False)
    c.username_pw_set(username, password)
    c.on_connect = lambda cl, u, flags, reason, p: connack.put(reason)
    c.connect(broker.host, broker.port)
    c.loop_start()
    reason = connack.get(timeout=10)
    if reason.is_failure:
        c.loop_stop()
        return reason
    return c


def control(broker, account, commands):
    """Send dynamic security commands as `account`; return the plugin's answers (None: no
    answer within 5 s, which is what an account without the ACL's grant gets)."""
    answers = queue.Queue()
    c = client(broker, *broker.user(account))
    c.on_message = lambda cl, u, message: answers.put(json.loads(message.payload))
    c.subscribe(CONTROL + "/response", qos=1)
    c.publish(CONTROL, json.dumps({"commands": commands}), qos=1).wait_for_publish(5)
    try:
        return answers.get(timeout=5)["responses"]
    except queue.Empty:
        return None
    finally:
        c.disconnect()
        c.loop_stop()


def test_device_accounts_are_administered_by_the_portal_only_and_survive_a_restart(
        mqtt_broker):
    create = [{"command": "createClient", "username": "planta/linea1/sensor1",
               "password": "device-pw"}]
    assert control(mqtt_broker, "NODERED", create) is None  # `#` does not match $CONTROL
    assert control(mqtt_broker, "PORTAL", create) == [{"command": "createClient"}]
    device = client(mqtt_broker, "planta/linea1/sensor1", "device-pw")
    assert isinstance(device, mqtt.Client)
    device.disconnect()
    device.loop_stop()

    mqtt_broker.stop()
    mosquitto.prepare(mqtt_broker.conf.parent, mqtt_broker.config)  # as the launcher's next start
    assert "planta/linea1/sensor1" in (mqtt_broker.conf.parent / "data" /
                                       mosquitto.DYNSEC_FILE).read_text()
    mqtt_broker.start()
    device = client(mqtt_broker, "planta/linea1/sensor1", "device-pw")
    assert isinstance(device, mqtt.Client), device
    device.disconnect()
    device.loop_stop()
    wrong = client(mqtt_broker, "planta/linea1/sensor1", "not-the-password")
    assert not isinstance(wrong, mqtt.Client) and wrong.is_failure
    assert "Error" not in mqtt_broker.log(), mqtt_broker.log()
