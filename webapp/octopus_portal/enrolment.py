"""Device enrolment (MQTT_ENROLMENT=true): a device that has no account yet connects with the
shared enrolment login and asks for one on octopus/enrol/<client id>; it waits in quarantine
until an admin approves (it then receives its own login on octopus/enrol/<client id>/reply)
or rejects it on /device-accounts. The broker lets each enrolling client use only the two
topics of its own client id (mosquitto/acl), so devices cannot read each other's replies."""
import json
import logging

from .mqtt_accounts import device_username
from .topics import device_errors

log = logging.getLogger(__name__)

PREFIX = "octopus/enrol/"
REQUEST_TOPIC = PREFIX + "+"
MAX_REQUEST_BYTES = 1024

UPSERT_SQL = """
INSERT INTO device_enrolments (client_id, site, room, device) VALUES (%s, %s, %s, %s)
ON CONFLICT (client_id) WHERE decision IS NULL DO UPDATE
   SET site = EXCLUDED.site, room = EXCLUDED.room, device = EXCLUDED.device,
       last_requested_at = now(), requests = device_enrolments.requests + 1
RETURNING id"""


def reply_topic(client_id):
    return f"{PREFIX}{client_id}/reply"


def parse_request(topic, payload):
    """(client id, site, room, device) of a request; ValueError saying what is wrong."""
    client_id = topic[len(PREFIX):]
    if len(payload) > MAX_REQUEST_BYTES:
        raise ValueError(f"the request is larger than {MAX_REQUEST_BYTES} bytes")
    try:
        wanted = json.loads(payload)
        levels = [wanted[key] for key in ("site", "room", "device")]
    except (ValueError, TypeError, KeyError):
        raise ValueError('expected JSON {"site": ..., "room": ..., "device": ...}') from None
    errors = device_errors(*levels)
    if errors:
        raise ValueError(" ".join(errors))
    return (client_id, *levels)


def record_request(conn, client_id, site, room, device):
    """Put a request in quarantine (or refresh a waiting one); return the reply to send."""
    username = device_username(site, room, device)
    if conn.execute("SELECT 1 FROM device_accounts WHERE username = %s AND revoked_at IS NULL",
                    (username,)).fetchone():
        return {"status": "refused", "reason": f"{username} already has an account; ask an "
                                               "admin for its login"}
    conn.execute(UPSERT_SQL, (client_id, site, room, device))
    return {"status": "pending", "device": username,
            "reason": "waiting for an admin to approve it on the portal"}


def handle(app, client, message):
    """The live bridge's handler for octopus/enrol/+: record the request, answer the device."""
    from .db import get_db
    client_id = message.topic[len(PREFIX):]
    try:
        request = parse_request(message.topic, message.payload)
        with app.app_context():
            reply = record_request(get_db(), *request)
    except ValueError as exc:
        reply = {"status": "refused", "reason": str(exc)}
    except Exception:  # the database is down: the device asks again later
        log.exception("could not record the enrolment request of %r", client_id)
        reply = {"status": "error", "reason": "the platform could not record the request; "
                                              "ask again later"}
    log.info("enrolment request from client %r: %s", client_id, reply["status"])
    client.publish(reply_topic(client_id), json.dumps(reply), qos=1)
