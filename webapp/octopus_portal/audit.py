"""The audit log: record() notes who did what (logins, users, keys, rules, channels, Modbus
devices, device accounts and commands); admins read it on /audit, newest first."""
import ipaddress
import json
import re

from flask import Blueprint, has_request_context, render_template, request
from flask_login import current_user
from psycopg.types.json import Jsonb

from . import auth  # the module, not its names: auth imports this module too (logins)
from .db import first_page, get_db, page_start

bp = Blueprint("audit", __name__)

ACTION = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*")  # as the table's CHECK says
PAGE_SIZE = 100
INSERT_SQL = """INSERT INTO audit_log (actor, actor_id, action, subject, detail, address)
 VALUES (%s, %s, %s, %s, %s, %s)"""


def dumps(detail):
    # str() for what JSON has no type for (times, decimals): the log shows it as it was
    return json.dumps(detail, default=str, ensure_ascii=False)


def current_actor():
    """(username, user id) of whoever this request runs for, or (None, None)."""
    if not has_request_context() or not current_user.is_authenticated:
        return None, None
    api_key = getattr(current_user, "api_key", None)
    if api_key is not None:  # a REST API call with a key: no user, the key's name
        return f"key:{api_key.name}", None
    return current_user.username, current_user.id


def client_address():
    """The client's address, or None if there is none that PostgreSQL's inet would take."""
    address = request.remote_addr if has_request_context() else None
    try:
        return str(ipaddress.ip_address(address)) if address else None
    except ValueError:  # e.g. a unix socket's peer
        return None


def record(action, subject=None, **detail):
    """Add `action` (a short dotted name, e.g. "user.created") done by the current user to
    `subject` to the audit log, in the request's connection: inside a transaction, the row
    commits or rolls back with the change. Never pass a secret in `detail`."""
    if not ACTION.fullmatch(action):
        raise ValueError(f"audit action {action!r}: lower-case words joined by dots, "
                         "e.g. user.created")
    actor, actor_id = current_actor()
    get_db().execute(INSERT_SQL, (actor, actor_id, action,
                                  None if subject is None else str(subject),
                                  Jsonb(detail, dumps=dumps), client_address()))


def changes(before, after):
    """{field: [old, new]} for each field of `after` whose value differs in `before`."""
    return {field: [before.get(field), value] for field, value in after.items()
            if before.get(field) != value}


# One page, newest first, walking the primary key backwards; an empty filter matches all.
# "user" matches user.created and user.deleted, not "username.x": a prefix of whole words.
PAGE_SQL = """
SELECT id, at, actor, action, subject, detail, address FROM audit_log
 WHERE (%(action)s = '' OR action = %(action)s OR action LIKE %(action_like)s)
   AND (%(actor)s = '' OR actor = %(actor)s)
   AND (%(before)s::bigint IS NULL OR id < %(before)s::bigint)
 ORDER BY id DESC LIMIT %(limit)s"""


def like_escaped(text):
    """`text` with LIKE's wildcards (and its escape character) taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@bp.before_request
def admins_only():
    """The log names people and their addresses: admins only."""
    auth.require_admin()


@bp.get("/audit")
def index():
    """The audit log, newest first, a page at a time; filtered by action prefix and user."""
    action = request.args.get("action", "").strip().rstrip(".")
    actor = request.args.get("user", "").strip()
    before_id = page_start(request.args.get("before", ""))
    db = get_db()
    rows = db.execute(PAGE_SQL, {"action": action, "action_like": like_escaped(action) + ".%",
                                 "actor": actor, "before": before_id,
                                 "limit": PAGE_SIZE + 1}).fetchall()
    users = [r["username"] for r in db.execute("SELECT username FROM users ORDER BY username")]
    rows, older = first_page(rows, PAGE_SIZE)
    return render_template("audit.html", rows=rows, action=action, actor=actor, users=users,
                           older=older, paged=before_id is not None,
                           shown=lambda detail: dumps(detail) if detail else "")
