"""Who is calling the API and what they may do: an API key or a logged-in portal session.

A key is sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Without one, the
portal session counts, and a session's writes need the CSRF token as any portal form does
(a key is not sent by browsers on their own, so key calls need none). Scopes follow the
method: GET needs `read`, anything else `write`. A key restricted to a site sees only that
site; asking for another one is a 403. A key also opens /metrics, as does METRICS_TOKEN
(metrics.py).
"""
import hmac
from dataclasses import dataclass
from datetime import timezone

from flask import current_app, g, request
from flask_login import UserMixin, current_user

from ..db import get_db
from ..extensions import csrf, login_manager
from ..keys import find_key
from .errors import ApiError

PREFIX = "/api/v1/"
METRICS_PATH = "/metrics"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Portal roles that may also write through the API (send readings) with their session.
WRITE_ROLES = frozenset({"admin", "operator"})


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of this request."""
    kind: str  # "key" or "session"
    name: str  # the key's name or the username
    scopes: frozenset
    site: str | None  # None: every site


class KeyUser(UserMixin):
    """What Flask-Login sees for a request authenticated by a live key: it gets the request
    past the portal's login requirement; the API itself then reads the key again (g)."""

    def __init__(self, api_key):
        self.id = f"key:{api_key.id}"
        self.api_key = api_key


class ScrapeUser(UserMixin):
    """A Prometheus scraper that sent METRICS_TOKEN: it opens /metrics and nothing else."""
    id = "metrics-token"


def is_metrics_token(token):
    """True if `token` is the configured METRICS_TOKEN (never when none is configured)."""
    expected = current_app.config.get("METRICS_TOKEN") or ""
    return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())


def key_in_headers():
    """The key sent with this request ('' if sent empty), or None if none was sent.

    Authorization with another scheme is not ours to read: a proxy in front of the portal
    may use Basic authentication, and the browser then sends it with every page's call.
    """
    scheme, _, key = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer":
        return key.strip()
    key = request.headers.get("X-API-Key")
    return key.strip() if key is not None else None


def live_key(key):
    """The stored key if it exists and is not revoked, else None with the reason in
    g.api_key_problem (looked up once per request)."""
    if "api_key" not in g:
        g.api_key = api_key = find_key(get_db(), key) if key else None
        if not key:
            g.api_key_problem = ("the key is empty: send 'Authorization: Bearer <key>' or "
                                 "'X-API-Key: <key>'")
        elif api_key is None:
            g.api_key_problem = ("unknown API key: check that it was copied whole, or ask an "
                                 "admin for one")
        elif api_key.revoked_at is not None:
            revoked = api_key.revoked_at.astimezone(timezone.utc)
            g.api_key_problem = (f"this API key ({api_key.name!r}) was revoked on "
                                 f"{revoked:%Y-%m-%d %H:%M} UTC; ask an admin for a new one")
    api_key = g.api_key
    return api_key if api_key is not None and api_key.revoked_at is None else None


@login_manager.request_loader
def load_key_user(req):
    """Flask-Login's hook for requests without a session: a live key on an API path or
    /metrics, or METRICS_TOKEN on /metrics."""
    if not req.path.startswith(PREFIX) and req.path != METRICS_PATH:
        return None  # a key opens the API and /metrics, never a portal page or the live stream
    key = key_in_headers()
    if key is None:
        return None
    if req.path == METRICS_PATH and is_metrics_token(key):
        return ScrapeUser()
    api_key = live_key(key)
    return KeyUser(api_key) if api_key is not None else None


def caller_of_request():
    """The Caller of this request; ApiError 401 if there is none."""
    key = key_in_headers()
    if key is not None:  # a key, when sent, is what counts, even beside a session cookie
        api_key = live_key(key)
        if api_key is None:
            raise ApiError(401, g.api_key_problem)
        return Caller("key", api_key.name, api_key.scopes, api_key.site)
    if not current_user.is_authenticated:  # require_login stops these first; never rely on it
        raise ApiError(401, "log in to the portal, or send an API key")
    if request.method not in READ_METHODS and current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()  # raises CSRFError (400) without a valid X-CSRFToken
    scopes = {"read", "write"} if current_user.role in WRITE_ROLES else {"read"}
    return Caller("session", current_user.username, frozenset(scopes), None)


def authenticate():
    """Before every API request: identify the caller and check the scope the method needs."""
    caller = caller_of_request()
    needed = "read" if request.method in READ_METHODS else "write"
    if needed not in caller.scopes:
        if caller.kind == "key":
            raise ApiError(403, f"this API key has scope {', '.join(sorted(caller.scopes))}; "
                                f"this call needs scope {needed}")
        raise ApiError(403, f"your portal role may only read; use an API key with scope "
                            f"{needed}, or ask an admin")
    g.api_caller = caller


def caller_site():
    """The one site this caller may see, or None for every site."""
    return g.api_caller.site


def narrow(selection):
    """`selection` (a history.Selection or a rejects.TopicFilter: its topic levels) limited to
    the caller's site; ApiError 403 if it names another site."""
    site = caller_site()
    if site is None:
        return selection
    first, kind = selection.levels[0], type(selection)
    if first == "#":
        return kind((site, "#"))
    if first == "+":
        return kind((site,) + selection.levels[1:])
    if first != site:
        raise ApiError(403, f"this API key only covers site {site!r}")
    return selection


def check_site(site):
    """ApiError 403 unless the caller may write to `site`."""
    allowed = caller_site()
    if allowed is not None and site != allowed:
        raise ApiError(403, f"this API key only covers site {allowed!r}, not {site!r}")


def init_app(bp):
    """The API's 401 instead of the login page's redirect; CSRF checked here, for sessions."""
    login_manager.blueprint_login_views[bp.name] = None  # Flask-Login then aborts with 401
    csrf.exempt(bp)  # caller_of_request() checks it for session writes
