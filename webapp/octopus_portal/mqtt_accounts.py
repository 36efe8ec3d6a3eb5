"""Device accounts in the broker: Mosquitto's dynamic security plugin, driven over MQTT.

The plugin takes JSON commands on $CONTROL/dynamic-security/v1 and answers on
.../response; a change applies at once, without restarting the broker, and deleting a
client disconnects it. The portal's MQTT account may use that topic (mosquitto/acl). Each
call opens its own short connection: provisioning is rare, and a dedicated client keeps the
replies away from the live feed's connection.
"""
import json
import secrets
import threading
import uuid

import paho.mqtt.client as mqtt

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
# Errors the plugin answers when the thing to delete is already gone: revoking twice, or
# cleaning up after a provisioning that failed half-way, is not a failure.
GONE = ("Client not found", "Role not found")


class BrokerError(RuntimeError):
    """The broker could not be reached or refused a command; the text says which and why."""


def device_username(site, room, device):
    """A device's MQTT username: its topic prefix, unique and readable in the broker's logs."""
    return f"{site}/{room}/{device}"


def device_role(username):
    return f"device:{username}"


def device_acls(site, room, device):
    """Publish under its own prefix only; subscribe to and receive its own commands only
    (the broker's default refuses everything else, receiving included: launcher/mosquitto.py)."""
    prefix = f"{site}/{room}/{device}"
    return [
        {"acltype": "publishClientSend", "topic": f"{prefix}/#", "allow": True},
        {"acltype": "subscribePattern", "topic": f"{prefix}/+/set", "allow": True},
        {"acltype": "publishClientReceive", "topic": f"{prefix}/+/set", "allow": True},
    ]


def new_password():
    """A random device password (shown once; the broker keeps a salted PBKDF2 hash)."""
    return secrets.token_urlsafe(18)


def run(config, commands, timeout=10.0):
    """Send dynsec `commands` (dicts) in one request; return their responses, in order.

    Raise BrokerError if the broker cannot be reached, refuses the portal's account, or does
    not answer within `timeout` s. A command's own error is in its response's "error".
    """
    correlation = uuid.uuid4().hex
    for index, command in enumerate(commands):
        command["correlationData"] = f"{correlation}-{index}"
    answered = threading.Event()
    state = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            state["error"] = f"the broker refused the portal's account ({reason_code})"
            answered.set()
            return
        client.subscribe(RESPONSE_TOPIC, qos=1)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        if reason_codes[0].is_failure:
            state["error"] = (f"the portal's MQTT account may not read {RESPONSE_TOPIC} "
                              "(mosquitto/acl)")
            answered.set()
            return
        client.publish(CONTROL_TOPIC, json.dumps({"commands": commands}), qos=1)

    def on_message(client, userdata, message):
        try:
            responses = json.loads(message.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            return
        ours = [r for r in responses
                if str(r.get("correlationData", "")).startswith(correlation)]
        if ours:
            state["responses"] = ours
            answered.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"octopus-portal-accounts-{secrets.token_hex(4)}")
    client.username_pw_set(config["MQTT_PORTAL_USER"], config["MQTT_PORTAL_PASSWORD"])
    client.on_connect, client.on_subscribe = on_connect, on_subscribe
    client.on_message = on_message
    try:
        client.connect(config["MQTT_HOST"], int(config["MQTT_PORT"]), keepalive=30)
    except OSError as exc:
        raise BrokerError(f"cannot reach the MQTT broker at {config['MQTT_HOST']}:"
                          f"{config['MQTT_PORT']} ({exc})") from None
    client.loop_start()
    try:
        if not answered.wait(timeout):
            raise BrokerError("the MQTT broker did not answer the account change within "
                              f"{timeout:g} s (is its dynamic security plugin loaded?)")
    finally:
        client.disconnect()
        client.loop_stop()
    if "error" in state:
        raise BrokerError(state["error"])
    by_id = {r["correlationData"]: r for r in state["responses"]}
    return [by_id.get(c["correlationData"], {"error": "no answer"}) for c in commands]


def check(responses, tolerated=()):
    """Raise BrokerError naming the first command the broker refused (except `tolerated`)."""
    for response in responses:
        error = response.get("error")
        if error and error not in tolerated:
            raise BrokerError(f"the broker refused {response.get('command', 'a command')}: "
                              f"{error}")


def remove_device(config, username):
    """Delete a device's client (which disconnects it at once) and its role; gone is fine."""
    check(run(config, [{"command": "deleteClient", "username": username},
                       {"command": "deleteRole", "rolename": device_role(username)}]),
          tolerated=GONE)


def add_device(config, site, room, device, password):
    """Create the device's role and client; whatever a failed earlier attempt left goes first."""
    username = device_username(site, room, device)
    role = device_role(username)
    remove_device(config, username)
    check(run(config, [
        {"command": "createRole", "rolename": role, "acls": device_acls(site, room, device),
         "textdescription": "an Octopus device: its own topics only"},
        {"command": "createClient", "username": username, "password": password,
         "roles": [{"rolename": role}], "textname": "provisioned on the Octopus portal"},
    ]))
    return username
