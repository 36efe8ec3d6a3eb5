"""The REST API under /api/v1 (JSON, API keys or a portal session) and its docs at /api/docs.

doc/api.md describes it for callers; openapi.py is the machine-readable contract.
"""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# /api/docs is a portal page (login required, base layout); it also serves the static
# files of the docs and keys pages.
docs_bp = Blueprint("api_docs", __name__, url_prefix="/api", template_folder="templates",
                    static_folder="static")

from . import auth, errors  # noqa: E402  (they need bp)

bp.before_request(auth.authenticate)
errors.register_on_blueprint(bp)

# their routes
from . import alerts, docs, export, ingest, openapi, read, rejects  # noqa: E402,F401


def init_app(app):
    """Register the API and its docs on `app`."""
    auth.init_app(bp)
    errors.register_on_app(app)
    app.register_blueprint(bp)
    app.register_blueprint(docs_bp)
