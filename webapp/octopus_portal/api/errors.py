"""The API's errors: every failure is JSON `{"error": "<what to do>"}` with a 4xx status."""
import logging

from flask import g, jsonify, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ..history import SelectionError

log = logging.getLogger(__name__)

# Werkzeug's own descriptions are written for HTML pages; these say what to do instead.
MESSAGES = {
    401: "log in to the portal, or send an API key as 'Authorization: Bearer <key>' "
         "(or 'X-API-Key: <key>'); admins create keys on /keys",
    404: "no such API endpoint: the endpoints are listed in /api/v1/openapi.json",
    405: "this endpoint does not take that method: see /api/v1/openapi.json",
    413: "the request body is too large",
}


def quoted(value, limit=80):
    """`value` quoted for a message, cut short: an answer never echoes a huge input whole."""
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit] + "…")


class ApiError(Exception):
    """A request the API refuses: `status` (4xx or 503) and a message for the caller."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


def error_response(status, message):
    """The JSON error answer; a 401 also names the scheme to use (RFC 6750)."""
    response = jsonify(error=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="octopus"'
    return response


def on_api_error(exc):
    return error_response(exc.status, exc.message)


def on_selection_error(exc):
    return error_response(400, str(exc))


def on_csrf_error(exc):
    return error_response(400, "a session-authenticated write needs the CSRF token in the "
                               "X-CSRFToken header (from a portal page), or use an API key "
                               f"instead ({exc.description})")


def on_http_error(exc):
    # a 401 raised by the login requirement: say why the key, if one was sent, did not do
    message = g.get("api_key_problem") if exc.code == 401 else None
    return error_response(exc.code, message or MESSAGES.get(exc.code, exc.description))


def on_unexpected_error(exc):
    """A bug, not bad input: logged with its traceback, answered without internals."""
    log.exception("API %s %s failed", request.method, request.path)
    return error_response(500, "the portal failed to answer; the error is in its log")


def is_api_path():
    return request.path.startswith("/api/v1/")


def on_app_routing_error(exc):
    """An unknown path or method under /api/v1 as JSON; elsewhere Flask's own page."""
    if is_api_path():
        return on_http_error(exc)
    return exc


def register_on_blueprint(bp):
    """The API blueprint's handlers: every error it raises becomes a JSON answer."""
    bp.register_error_handler(ApiError, on_api_error)
    bp.register_error_handler(SelectionError, on_selection_error)
    bp.register_error_handler(CSRFError, on_csrf_error)
    bp.register_error_handler(HTTPException, on_http_error)
    bp.register_error_handler(Exception, on_unexpected_error)


def register_on_app(app):
    """404 / 405 under /api/v1 as JSON too (raised before a blueprint is known)."""
    app.register_error_handler(404, on_app_routing_error)
    app.register_error_handler(405, on_app_routing_error)
