"""API keys: admins create, list and revoke them on /keys; the REST API finds them by hash.

A key is `oct_` and 43 URL-safe characters (32 random bytes). It is shown once, when it is
made; the database keeps its SHA-256 (the lookup) and its first characters (to recognise
it in the list). postgres/migrations/005_api_keys.sql says why a fast hash is right here.
"""
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user

from . import audit
from .auth import require_admin
from .db import get_db
from .topics import is_level

bp = Blueprint("keys", __name__)

KEY_FORMAT = re.compile(r"oct_[A-Za-z0-9_-]{43}")
SHOWN_CHARS = 12  # "oct_" and 8 more: enough to tell keys apart, useless to an attacker
SCOPES = ("read", "write")
NAME_MAX_CHARS = 64


@dataclass(frozen=True)
class ApiKey:
    """A stored key as the API needs it: what it may do, and whether it still may."""
    id: int
    name: str
    scopes: frozenset
    site: str | None
    revoked_at: datetime | None


def new_key():
    """A fresh random key (the only time it exists in clear)."""
    return "oct_" + secrets.token_urlsafe(32)


def key_hash(key):
    """The SHA-256 of a key, as stored in api_keys.key_hash."""
    return hashlib.sha256(key.encode()).digest()


# One round trip: find the key by its hash and, if it is live and was not used in the last
# minute, stamp last_used_at (a busy key does not write a row on every call).
FIND_SQL = """
WITH found AS (
    SELECT id, name, scopes, site, revoked_at, last_used_at FROM api_keys WHERE key_hash = %s
), used AS (
    UPDATE api_keys k SET last_used_at = now()
      FROM found
     WHERE k.id = found.id AND found.revoked_at IS NULL
       AND (found.last_used_at IS NULL OR found.last_used_at < now() - interval '1 minute')
)
SELECT id, name, scopes, site, revoked_at FROM found"""


def find_key(conn, key):
    """The stored key that `key` is (revoked or not), or None; records that it was used."""
    if not KEY_FORMAT.fullmatch(key):
        return None
    row = conn.execute(FIND_SQL, (key_hash(key),)).fetchone()
    if row is None:
        return None
    return ApiKey(row["id"], row["name"], frozenset(row["scopes"]), row["site"],
                  row["revoked_at"])


def create_key(conn, name, scopes, site, created_by):
    """Store a new key; return (its id, the key in clear)."""
    key = new_key()
    row = conn.execute(
        "INSERT INTO api_keys (name, prefix, key_hash, scopes, site, created_by)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (name, key[:SHOWN_CHARS], key_hash(key), list(scopes), site, created_by)).fetchone()
    return row["id"], key


def check_new_key(name, scopes, site):
    """What is wrong with the form's values, as a list of messages (empty: fine)."""
    errors = []
    if not name or len(name) > NAME_MAX_CHARS or not name.isprintable():
        errors.append(f"Name: 1 to {NAME_MAX_CHARS} printable characters, e.g. what will use "
                      "the key.")
    if not scopes or any(scope not in SCOPES for scope in scopes):
        errors.append("Scopes: tick read, write or both.")
    if site and (not is_level(site) or site == "octopus"):
        errors.append("Site: one site name as it appears in topics (no '/', '+' or '#'), "
                      "or empty for every site.")
    return errors


LIST_SQL = """
SELECT k.id, k.name, k.prefix, k.scopes, k.site, k.created_at, k.last_used_at, k.revoked_at,
       u.username AS created_by
  FROM api_keys k LEFT JOIN users u ON u.id = k.created_by
 ORDER BY k.revoked_at IS NOT NULL, k.created_at DESC, k.id DESC"""


def render_keys(status=200, **context):
    """The keys page: every key (live first) and the form for a new one."""
    db = get_db()
    keys = db.execute(LIST_SQL).fetchall()
    sites = [r["site"] for r in db.execute("SELECT DISTINCT site FROM devices ORDER BY site")]
    context.setdefault("form", {"name": "", "scopes": ["read"], "site": ""})
    page = render_template("keys.html", keys=keys, sites=sites, scopes=SCOPES, **context)
    # a page that may show a key in clear is never kept by a browser or a proxy
    return page, status, {"Cache-Control": "no-store"}


bp.before_request(require_admin)  # only admins manage keys


@bp.get("/keys")
def index():
    """The list of keys and the form to create one."""
    return render_keys()


@bp.post("/keys")
def create():
    """Create a key and show it, this once."""
    form = {"name": request.form.get("name", "").strip(),
            "scopes": request.form.getlist("scopes"),
            "site": request.form.get("site", "").strip()}
    errors = check_new_key(**form)
    if errors:
        return render_keys(400, form=form, errors=errors)
    db = get_db()
    with db.transaction():
        key_id, key = create_key(db, form["name"], form["scopes"], form["site"] or None,
                                 current_user.id)
        audit.record("key.created", form["name"], key_id=key_id, prefix=key[:SHOWN_CHARS],
                     scopes=form["scopes"], site=form["site"] or None)
    return render_keys(201, created={"id": key_id, "key": key, "name": form["name"]})


@bp.post("/keys/<int:key_id>/revoke")
def revoke(key_id):
    """Revoke a key: every call with it is refused from now on."""
    db = get_db()
    with db.transaction():
        key = db.execute("UPDATE api_keys SET revoked_at = now()"
                         " WHERE id = %s AND revoked_at IS NULL RETURNING name, prefix",
                         (key_id,)).fetchone()
        if key is not None:
            audit.record("key.revoked", key["name"], key_id=key_id, prefix=key["prefix"])
    return redirect(url_for("keys.index"))
