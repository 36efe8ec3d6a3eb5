"""Device accounts: an admin provisions a device's MQTT login on /device-accounts (shown
once) and revokes it; the broker applies both at once (mqtt_accounts)."""
import json
from pathlib import Path

import psycopg
from cryptography import x509
from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from . import audit, certificates, enrolment, live, mqtt_accounts
from .auth import require_admin
from .db import get_db
from .topics import device_errors

bp = Blueprint("device_accounts", __name__)
bp.before_request(require_admin)  # only admins hand out and take back device logins

LIST_SQL = """
SELECT a.id, a.username, a.site, a.room, a.device, a.created_at, a.revoked_at,
       a.client_certificate_serial, c.username AS created_by, r.username AS revoked_by
  FROM device_accounts a
  LEFT JOIN users c ON c.id = a.created_by
  LEFT JOIN users r ON r.id = a.revoked_by
 ORDER BY a.revoked_at IS NOT NULL, a.created_at DESC, a.id DESC"""


WAITING_SQL = """
SELECT id, client_id, site, room, device, requested_at, last_requested_at, requests
  FROM device_enrolments WHERE decision IS NULL ORDER BY requested_at, id"""


def render_accounts(status=200, **context):
    """The page: devices waiting in quarantine, live accounts, revoked ones, and the form."""
    db = get_db()
    context.setdefault("form", {"site": "", "room": "", "device": "", "with_certificate": False})
    page = render_template("device_accounts.html", accounts=db.execute(LIST_SQL).fetchall(),
                           waiting=db.execute(WAITING_SQL).fetchall(),
                           enrolment=current_app.config["MQTT_ENROLMENT"],
                           mqtt_port=current_app.config["MQTT_PORT"], **context)
    # a page that may show a password in clear is never kept by a browser or a proxy
    return page, status, {"Cache-Control": "no-store"}


@bp.get("/device-accounts")
def index():
    """Every device account and the provisioning form."""
    return render_accounts()


class NotProvisioned(Exception):
    """Why an account was not created: the HTTP status and the messages for the form."""

    def __init__(self, status, *errors):
        super().__init__(*errors)
        self.status, self.errors = status, list(errors)


def client_certificate(username):
    """(cert PEM, key PEM, CA PEM, serial) of a new client certificate for the device."""
    config = current_app.config
    if not (config["MQTT_TLS_CA_CERTFILE"] and config["MQTT_TLS_CA_KEYFILE"]):
        raise NotProvisioned(400, "Client certificates are not available: the broker trusts "
                                  "your own CA (MQTT_TLS_CAFILE), which the portal cannot sign "
                                  "with. Issue the certificate with that CA.")
    try:
        cert, key = certificates.issue_client_certificate(
            config["MQTT_TLS_CA_CERTFILE"], config["MQTT_TLS_CA_KEYFILE"], username)
    except ValueError as exc:
        raise NotProvisioned(400, f"No client certificate: {exc}.") from None
    serial = x509.load_pem_x509_certificate(cert.encode()).serial_number
    ca = Path(config["MQTT_TLS_CA_CERTFILE"]).read_text()
    return {"cert": cert, "key": key, "ca": ca, "serial": format(serial, "x")}


def create_account(site, room, device, with_certificate=False, **audit_detail):
    """Create a device's account in the broker and record it; return (username, password,
    its client certificate or None).

    The row is written first and committed only once the broker has the account: a broker
    that refuses leaves no record of an account that does not exist.
    """
    errors = device_errors(site, room, device)
    username = mqtt_accounts.device_username(site, room, device)
    db = get_db()
    if not errors and db.execute("SELECT 1 FROM device_accounts WHERE username = %s AND "
                                 "revoked_at IS NULL", (username,)).fetchone():
        errors.append(f"{username} already has an account: revoke it first to issue a new one.")
    if errors:
        raise NotProvisioned(400, *errors)
    certificate = client_certificate(username) if with_certificate else None
    password = mqtt_accounts.new_password()
    try:
        with db.transaction():
            db.execute("INSERT INTO device_accounts (site, room, device, username, created_by,"
                       " client_certificate_serial) VALUES (%s, %s, %s, %s, %s, %s)",
                       (site, room, device, username, current_user.id,
                        certificate and certificate["serial"]))
            mqtt_accounts.add_device(current_app.config, site, room, device, password)
            if certificate:
                audit_detail["client_certificate_serial"] = certificate["serial"]
            audit.record("device.provisioned", username, **audit_detail)
    except mqtt_accounts.BrokerError as exc:
        current_app.logger.error("provisioning %s failed: %s", username, exc)
        raise NotProvisioned(502, f"Not provisioned: {exc}.") from None
    except psycopg.errors.UniqueViolation:  # another admin provisioned it a moment ago
        raise NotProvisioned(400, f"{username} already has an account.") from None
    return username, password, certificate


@bp.post("/device-accounts")
def provision():
    """Create a device's MQTT account in the broker and show its password, this once."""
    form = {key: request.form.get(key, "").strip() for key in ("site", "room", "device")}
    form["with_certificate"] = request.form.get("with_certificate") == "yes"
    try:
        username, password, certificate = create_account(**form)
    except NotProvisioned as refused:
        return render_accounts(refused.status, form=form, errors=refused.errors)
    return render_accounts(201, created={"username": username, "password": password,
                                         "certificate": certificate})


@bp.post("/device-accounts/<int:account_id>/revoke")
def revoke(account_id):
    """Delete the device's account in the broker (it is disconnected at once), then record it."""
    db = get_db()
    account = db.execute("SELECT username FROM device_accounts WHERE id = %s AND "
                         "revoked_at IS NULL", (account_id,)).fetchone()
    if account is None:
        return redirect(url_for("device_accounts.index"))
    try:
        mqtt_accounts.remove_device(current_app.config, account["username"])
    except mqtt_accounts.BrokerError as exc:
        current_app.logger.error("revoking %s failed: %s", account["username"], exc)
        return render_accounts(502, errors=[f"Not revoked: {exc}. The device can still "
                                            "connect; try again."])
    db.execute("UPDATE device_accounts SET revoked_at = now(), revoked_by = %s WHERE id = %s",
               (current_user.id, account_id))
    audit.record("device.revoked", account["username"])
    return redirect(url_for("device_accounts.index"))


def waiting_request(enrolment_id):
    """A request still in quarantine, or None (decided meanwhile, or never existed)."""
    return get_db().execute("SELECT id, client_id, site, room, device FROM device_enrolments"
                            " WHERE id = %s AND decision IS NULL", (enrolment_id,)).fetchone()


def decide(request_row, decision, reply):
    """Record the admin's decision and tell the waiting device (QoS 1, not retained: the
    reply may carry its password)."""
    get_db().execute("UPDATE device_enrolments SET decision = %s, decided_by = %s,"
                     " decided_at = now() WHERE id = %s",
                     (decision, current_user.id, request_row["id"]))
    problem = live.deliver(enrolment.reply_topic(request_row["client_id"]), json.dumps(reply),
                           timeout=5)
    if problem:
        current_app.logger.warning("enrolment reply to %r not sent: %s",
                                   request_row["client_id"], problem)
    return problem is None


@bp.post("/device-accounts/enrolments/<int:enrolment_id>/approve")
def approve(enrolment_id):
    """Provision the device that asked, and send it its login (also shown here, once)."""
    row = waiting_request(enrolment_id)
    if row is None:
        return redirect(url_for("device_accounts.index"))
    try:
        username, password, _ = create_account(row["site"], row["room"], row["device"],
                                               enrolment=row["client_id"])
    except NotProvisioned as refused:
        return render_accounts(refused.status, errors=refused.errors)
    sent = decide(row, "approved", {"status": "approved", "username": username,
                                    "password": password})
    return render_accounts(201, created={"username": username, "password": password,
                                         "enrolment": row["client_id"], "sent": sent})


@bp.post("/device-accounts/enrolments/<int:enrolment_id>/reject")
def reject(enrolment_id):
    """Refuse a request: the device is told, and asking again starts a new request."""
    row = waiting_request(enrolment_id)
    if row is not None:
        decide(row, "rejected", {"status": "rejected", "reason": "an admin rejected it"})
        audit.record("device.enrolment_rejected", mqtt_accounts.device_username(
            row["site"], row["room"], row["device"]), enrolment=row["client_id"])
    return redirect(url_for("device_accounts.index"))
