"""The interactive API docs at /api/docs: Swagger UI from local files, behind the login.

Swagger UI's files come from the swagger-ui-bundle package (no CDN: the portal's
Content-Security-Policy allows scripts from this site only); our start-up script is a static
file for the same reason (no inline script).
"""
from flask import abort, render_template, send_from_directory, url_for
from swagger_ui_bundle import swagger_ui_path

from . import docs_bp

# The only files of the bundle the page uses.
ASSETS = {"swagger-ui.css", "swagger-ui-bundle.js"}
ASSET_MAX_AGE = 24 * 3600  # they change only with the package's version


@docs_bp.get("/docs")
def docs():
    """Swagger UI over /api/v1/openapi.json."""
    return render_template("api_docs.html", spec_url=url_for("api.openapi_json"))


@docs_bp.get("/docs/assets/<name>")
def asset(name):
    """One of Swagger UI's files."""
    if name not in ASSETS:
        abort(404)
    return send_from_directory(swagger_ui_path, name, max_age=ASSET_MAX_AGE)
