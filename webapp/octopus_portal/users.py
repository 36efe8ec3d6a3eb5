"""Portal users: admins list, create, change the role of, reset the password of and delete
users on /users. Every change is audited; the last admin can never be removed or demoted."""
import re
import secrets

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from psycopg import errors

from . import audit, live
from .auth import hasher, require_admin
from .db import get_db
from .extensions import socketio

bp = Blueprint("users", __name__)

ROLES = ("admin", "operator", "viewer")  # doc/security.md says what each may do
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
PASSWORD_MIN_CHARS = 12
PASSWORD_MAX_CHARS = 1024  # argon2 takes any length; this only bounds a silly request
LIST_SQL = "SELECT id, username, role, created_at, last_login_at FROM users ORDER BY username"
# Every admin row, locked in id order: two admins demoting or deleting each other at the same
# moment are served one after the other, and the second sees what the first left.
LOCK_ADMINS_SQL = "SELECT id FROM users WHERE role = 'admin' ORDER BY id FOR UPDATE"


def generated_password():
    """A random password (20 characters, 120 bits), shown once to the admin."""
    return secrets.token_urlsafe(15)


def password_problem(password, label="Password"):
    """What is wrong with a chosen password (the field called `label`), or None."""
    if not PASSWORD_MIN_CHARS <= len(password) <= PASSWORD_MAX_CHARS:
        return (f"{label}: {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters; a few "
                "words make a good one.")
    return None


def chosen_password():
    """(password, generated?, problem): the form's password, or a generated one if empty."""
    password = request.form.get("password", "")
    if not password:
        return generated_password(), True, None
    return password, False, password_problem(password)


def end_live_streams(user_id):
    """Disconnect the user's open Socket.IO connections (served by this process, the one
    portal process an installation runs): the login is checked when one opens, so a deleted
    user, or one whose password changed, would otherwise go on receiving live values."""
    room = live.USER_ROOM.format(user_id)
    for namespace in ("/", live.ALERTS_NAMESPACE):
        for sid, _ in list(socketio.server.manager.get_participants(namespace, room)):
            socketio.server.disconnect(sid, namespace=namespace)


def render_users(status=200, **context):
    """The users, the form for a new one, and a password shown this once (if any)."""
    users = get_db().execute(LIST_SQL).fetchall()
    context.setdefault("form", {"username": "", "role": "viewer"})
    page = render_template("users.html", users=users, roles=ROLES,
                           password_min=PASSWORD_MIN_CHARS, **context)
    # a page that may show a password in clear is never kept by a browser or a proxy
    return page, status, {"Cache-Control": "no-store"}


bp.before_request(require_admin)  # only admins manage users


@bp.get("/users")
def index():
    """Every user with their role and last login, and the form to add one."""
    return render_users()


@bp.post("/users")
def create():
    """Add a user with the typed password, or a generated one shown this once."""
    form = {"username": request.form.get("username", "").strip(),
            "role": request.form.get("role", "")}
    password, generated, problem = chosen_password()
    problems = [problem] if problem else []
    if not USERNAME.fullmatch(form["username"]):
        problems.append("Username: 1 to 64 letters, digits or . _ @ -, starting with a letter "
                        "or digit.")
    if form["role"] not in ROLES:
        problems.append("Role: one of " + ", ".join(ROLES) + ".")
    db = get_db()
    if not problems and db.execute("SELECT 1 FROM users WHERE lower(username) = lower(%s)",
                                   (form["username"],)).fetchone():
        problems.append(f"Username: “{form['username']}” is taken (names are compared "
                        "regardless of case).")
    if problems:
        return render_users(400, form=form, errors=problems)
    try:
        with db.transaction():
            db.execute("INSERT INTO users (username, password_hash, role) VALUES (%s, %s, %s)",
                       (form["username"], hasher.hash(password), form["role"]))
            audit.record("user.created", form["username"], role=form["role"],
                         password_generated=generated)
    except errors.UniqueViolation:  # made by someone else since the check above
        return render_users(400, form=form,
                            errors=[f"Username: “{form['username']}” is taken."])
    shown = {"username": form["username"], "password": password} if generated else None
    return render_users(201, created=form["username"], password=shown)


def locked_target(db, user_id, demoting):
    """The user `user_id` (locked), or a refusal: 404, or a message if it is the admin
    themself or the last admin and `demoting` (taking admin away, or deleting)."""
    admins = [r["id"] for r in db.execute(LOCK_ADMINS_SQL)]
    if current_user.id not in admins:
        abort(403)  # demoted by another admin since this request began
    target = db.execute("SELECT id, username, role FROM users WHERE id = %s FOR UPDATE",
                        (user_id,)).fetchone()
    if target is None:
        abort(404)
    if demoting and target["id"] == current_user.id:
        return target, "You cannot remove or demote yourself: ask another admin."
    if demoting and target["role"] == "admin" and len(admins) <= 1:
        return target, f"“{target['username']}” is the last admin: make another one first."
    return target, None


@bp.post("/users/<int:user_id>/role")
def change_role(user_id):
    """Give a user another role (never the last admin's, nor one's own)."""
    role = request.form.get("role", "")
    if role not in ROLES:
        return render_users(400, errors=["Role: one of " + ", ".join(ROLES) + "."])
    db = get_db()
    with db.transaction():
        target, problem = locked_target(db, user_id, demoting=role != "admin")
        if not problem and target["role"] != role:
            db.execute("UPDATE users SET role = %s WHERE id = %s", (role, user_id))
            audit.record("user.role_changed", target["username"], role=[target["role"], role])
    if problem:
        return render_users(400, errors=[problem])
    flash(f"“{target['username']}” is now {role}.", "info")
    return redirect(url_for("users.index"))


@bp.post("/users/<int:user_id>/password")
def reset_password(user_id):
    """Set another user's password: typed, or generated and shown this once."""
    if user_id == current_user.id:
        return render_users(400, errors=["Change your own password on your account page: it "
                                         "asks for the current one."])
    password, generated, problem = chosen_password()
    if problem:
        return render_users(400, errors=[problem])
    db = get_db()
    with db.transaction():
        target = db.execute("UPDATE users SET password_hash = %s WHERE id = %s"
                            " RETURNING username", (hasher.hash(password), user_id)).fetchone()
        if target is None:
            abort(404)
        audit.record("user.password_reset", target["username"], password_generated=generated)
    end_live_streams(user_id)  # as their sessions have ended (auth.session_token)
    if generated:
        return render_users(password={"username": target["username"], "password": password})
    flash(f"Password of “{target['username']}” changed.", "info")
    return redirect(url_for("users.index"))


@bp.post("/users/<int:user_id>/delete")
def delete(user_id):
    """Delete a user (never the last admin, nor oneself); what they did stays audited."""
    db = get_db()
    with db.transaction():
        target, problem = locked_target(db, user_id, demoting=True)
        if not problem:
            db.execute("DELETE FROM users WHERE id = %s", (user_id,))
            audit.record("user.deleted", target["username"], role=target["role"])
    if problem:
        return render_users(400, errors=[problem])
    end_live_streams(user_id)
    flash(f"User “{target['username']}” deleted.", "info")
    return redirect(url_for("users.index"))
