"""Logging in and out: portal users, argon2 password hashes, Flask-Login sessions."""
import hmac
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import (Blueprint, abort, current_app, g, redirect, render_template, request,
                   session, url_for)
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError

from . import audit
from .concurrency import off_the_loop
from .db import get_db
from .extensions import login_manager

bp = Blueprint("auth", __name__)
# The only endpoints an anonymous visitor may reach; everything else redirects to /login.
# /healthz is for load balancers and healthchecks, and says only "ok" or "down" (health.py).
PUBLIC_ENDPOINTS = {"auth.login", "static", "health.healthz"}


class Argon2Hasher(PasswordHasher):
    """argon2-cffi's hasher, its hashes and checks run off gevent's loop (concurrency.py)."""

    def hash(self, password, **kwargs):
        return off_the_loop(PasswordHasher.hash, self, password, **kwargs)

    def verify(self, hash, password):  # `hash`: argon2-cffi's own parameter name
        return off_the_loop(PasswordHasher.verify, self, hash, password)


hasher = Argon2Hasher()
# Verified against when the username does not exist, so that a wrong username takes as long
# as a wrong password and the response time does not tell which usernames exist.
DUMMY_HASH = hasher.hash("not a real password")
WRONG_LOGIN = "wrong username or password"
TOO_MANY_LOGINS = "Too many failed logins: wait a minute, then try again."


def session_token(password_hash):
    """A token that changes with the password: kept in the session cookie beside the user
    id, so that a new password (changed or reset) ends every session opened before it."""
    key = current_app.config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    # an HMAC, not a piece of the hash itself: the cookie is signed, not encrypted
    return hmac.new(key, password_hash.encode(), "sha256").hexdigest()[:32]


class User(UserMixin):
    """A portal user as Flask-Login sees it."""

    def __init__(self, id, username, role, password_hash):
        self.id, self.username, self.role = id, username, role
        self.session_token = session_token(password_hash)

    def get_id(self):
        """What the session cookie names: the user and their session_token."""
        return f"{self.id}:{self.session_token}"


@login_manager.user_loader
def load_user(user_id):
    """The logged-in user named by the session cookie, or None if it no longer exists or
    its password has changed since."""
    user_id, _, token = user_id.partition(":")
    try:
        user_id = int(user_id)
    except ValueError:
        return None
    row = get_db().execute("SELECT id, username, role, password_hash FROM users WHERE id = %s",
                           (user_id,)).fetchone()
    user = User(**row) if row else None
    return user if user and hmac.compare_digest(user.session_token, token) else None


def check_password(username, password):
    """The user if the password is right, else None; upgrades an outdated hash."""
    db = get_db()
    row = db.execute("SELECT id, username, role, password_hash FROM users WHERE username = %s",
                     (username,)).fetchone()
    try:
        hasher.verify(row["password_hash"] if row else DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if hasher.check_needs_rehash(row["password_hash"]):
        # (this ends the user's other sessions: rare, only when argon2's settings change)
        row["password_hash"] = hasher.hash(password)
        db.execute("UPDATE users SET password_hash = %s WHERE id = %s",
                   (row["password_hash"], row["id"]))
    return User(**row)


def safe_next(target):
    """`target` if it is a path on this site, else the home page (no open redirect)."""
    parts = urlsplit(target or "")
    if (not target or parts.scheme or parts.netloc or not target.startswith("/")
            or target.startswith(("//", "/\\"))):
        return url_for("devices.index")
    return target


@bp.route("/login", methods=("GET", "POST"))
def login():
    """The login form; on success, back to the page that asked for it."""
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    error = None
    username = request.form.get("username", "").strip()
    if request.method == "POST":
        user = check_password(username, request.form.get("password", ""))
        if user is None:
            error = WRONG_LOGIN
            audit.record("login.failed", username=username[:200])  # never the password
        else:
            session.clear()  # a fresh session: nothing from before the login carries over
            login_user(user)
            get_db().execute("UPDATE users SET last_login_at = now() WHERE id = %s", (user.id,))
            audit.record("login.succeeded")
            return redirect(safe_next(request.args.get("next")))
    return render_template("login.html", error=error, username=username)


@bp.post("/logout")
def logout():
    """End the session (POST with the CSRF token, so another site cannot log you out)."""
    audit.record("logout")
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.app_errorhandler(CSRFError)
def csrf_error(exc):
    """A form sent without a valid token (often: the page was open too long)."""
    message = "The form expired or was not sent from this site; please try again."
    if request.endpoint == "auth.login":
        return render_template("login.html", username=request.form.get("username", ""),
                               error=message), 400
    return message + " (Reload the page first.)", 400, {"Content-Type": "text/plain; charset=utf-8"}


def ensure_first_admin(app):
    """Create PORTAL_ADMIN_USER (role admin) if the portal has no user at all yet."""
    username = app.config["PORTAL_ADMIN_USER"]
    password = app.config["PORTAL_ADMIN_PASSWORD"]
    with app.app_context():
        conn = get_db()
        if conn.execute("SELECT EXISTS (SELECT 1 FROM users)").fetchone()["exists"]:
            return False
        if not username or not password:
            app.logger.warning("portal has no users and PORTAL_ADMIN_USER/PORTAL_ADMIN_PASSWORD "
                               "are not both set: set them and restart the portal to create "
                               "the first admin")
            return False
        # NOT EXISTS + ON CONFLICT: two portals booting at once still make only one admin.
        created = conn.execute(
            "INSERT INTO users (username, password_hash, role)"
            " SELECT %s, %s, 'admin' WHERE NOT EXISTS (SELECT 1 FROM users)"
            " ON CONFLICT (username) DO NOTHING", (username, hasher.hash(password))).rowcount
    if created:
        app.logger.info("created the first portal admin %r", username)
    return bool(created)


def require_login():
    """Every endpoint needs a login unless listed as public: a new page is private by default."""
    if request.endpoint not in PUBLIC_ENDPOINTS and not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


def require_admin():
    """403 unless the logged-in user is an admin (require_login has already turned anonymous
    visitors away). Call it, or register it as a blueprint's before_request."""
    if getattr(current_user, "role", None) != "admin":
        abort(403)


def username_and_address():
    """The rate-limit key of a login attempt: who it tries to be, and from where."""
    return f"{request.form.get('username', '').strip().lower()}@{get_remote_address()}"


def failed(response):
    """Only failed logins count against the limits (a login that works redirects)."""
    return response.status_code != 302


def too_many_logins(exc):
    """429: the login page again, saying why (Flask-Limiter adds Retry-After)."""
    return render_template("login.html", error=TOO_MANY_LOGINS,
                           username=request.form.get("username", "")), 429


def password_refused():
    """Note that this request gave a wrong current password (what /account's limit counts)."""
    g.password_refused = True


def account_holder():
    """The rate-limit key of a password change: the account it would change."""
    return f"account:{current_user.id}"


def limit_password_guesses(app):
    """Failed logins: LOGIN_RATE_LIMIT per username and address, LOGIN_RATE_LIMIT_PER_ADDRESS
    per address; wrong current passwords on /account (a session left open, guessing the
    password to keep the account): LOGIN_RATE_LIMIT per account. Flask-Limiter, counted in
    this process's memory: one portal process per installation (doc/security.md); more would
    need a shared storage_uri. Call it once the login and account views are registered."""
    limiter = Limiter(get_remote_address, app=app, storage_uri="memory://", headers_enabled=True)
    view = app.view_functions["auth.login"]
    for limit, key in ((app.config["LOGIN_RATE_LIMIT"], username_and_address),
                       (app.config["LOGIN_RATE_LIMIT_PER_ADDRESS"], get_remote_address)):
        view = limiter.limit(limit, key_func=key, methods=["POST"], deduct_when=failed)(view)
    app.view_functions["auth.login"] = view
    app.view_functions["account.change_password"] = limiter.limit(
        app.config["LOGIN_RATE_LIMIT"], key_func=account_holder, methods=["POST"],
        deduct_when=lambda response: g.get("password_refused", False),
    )(app.view_functions["account.change_password"])
    app.register_error_handler(429, too_many_logins)  # account.py answers its own 429


def init_app(app):
    """Wire Flask-Login and the login requirement for every page (the rate limits:
    limit_password_guesses)."""
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None  # the login page itself says what to do
    app.before_request(require_login)
    app.register_blueprint(bp)
