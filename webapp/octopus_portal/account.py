"""A logged-in user's own account: who they are, and changing their password (the current
one required, so that a session left open is not enough to take the account over)."""
from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user

from . import audit
from .auth import User, check_password, hasher, password_refused
from .db import get_db
from .users import PASSWORD_MIN_CHARS, end_live_streams, password_problem

bp = Blueprint("account", __name__)

TOO_MANY_TRIES = "Too many wrong current passwords: wait a minute, then try again."


def render_account(status=200, errors=()):
    """The account page with its password form."""
    return render_template("account.html", errors=errors,
                           password_min=PASSWORD_MIN_CHARS), status


@bp.get("/account")
def index():
    """Who is logged in, with which role, and the form to change one's password."""
    return render_account()


@bp.post("/account/password")
def change_password():
    """Change one's own password; other sessions of this user end, this one goes on."""
    new = request.form.get("new_password", "")
    problems = []
    if check_password(current_user.username, request.form.get("current_password", "")) is None:
        problems.append("Current password: not right.")
        password_refused()  # counted against LOGIN_RATE_LIMIT for this account
        audit.record("user.password_change_refused", current_user.username)
    problem = password_problem(new, "New password")
    if problem:
        problems.append(problem)
    if new != request.form.get("confirm_password", ""):
        problems.append("Confirm: type the new password twice, the same.")
    if problems:
        return render_account(400, problems)
    db, new_hash = get_db(), hasher.hash(new)
    with db.transaction():
        db.execute("UPDATE users SET password_hash = %s WHERE id = %s",
                   (new_hash, current_user.id))
        audit.record("user.password_changed", current_user.username)
    # the new password ends every session opened with the old one (auth.session_token):
    # this one starts afresh, as at a login
    user = User(current_user.id, current_user.username, current_user.role, new_hash)
    end_live_streams(user.id)  # this browser's pages reconnect with the new session
    session.clear()
    login_user(user)
    flash("Password changed.", "info")
    return redirect(url_for("account.index"))


@bp.errorhandler(429)
def too_many_tries(exc):
    """429: the account page again, saying why (Flask-Limiter adds Retry-After)."""
    return render_account(429, [TOO_MANY_TRIES])
