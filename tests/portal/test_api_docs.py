"""/api/docs (Swagger UI from local files, behind the login) and the OpenAPI document."""
import threading

import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server

from tests.helpers import free_port

from .helpers import ADMIN_PASSWORD, ADMIN_USER, ingest


def test_docs_page_needs_a_login(client):
    assert client.get("/api/docs").headers["Location"].startswith("/login")
    assert client.get("/api/docs/assets/swagger-ui-bundle.js").status_code == 302


def test_docs_page_uses_only_local_files(logged_in):
    response = logged_in.get("/api/docs")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "http://" not in html and "https://" not in html and "<script>" not in html
    assert 'data-spec-url="/api/v1/openapi.json"' in html
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/api/docs/assets/{asset}" in html
        assert logged_in.get(f"/api/docs/assets/{asset}").status_code == 200
    assert logged_in.get("/api/static/swagger-init.js").status_code == 200
    assert logged_in.get("/api/docs/assets/index.html").status_code == 404
    assert logged_in.get("/api/docs/assets/..%2F__init__.py").status_code == 404


def test_openapi_document_names_every_endpoint_and_the_security_schemes(logged_in):
    doc = logged_in.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.0")
    assert set(doc["paths"]) == {f"/api/v1/{p}" for p in (
        "devices", "attributes", "latest", "history", "aggregates", "export.csv", "readings",
        "rejects", "alerts", "alerts/{alert_id}", "alerts/{alert_id}/ack")}
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerKey"]["scheme"] == "bearer"
    assert (schemes["headerKey"]["in"], schemes["headerKey"]["name"]) == ("header", "X-API-Key")
    assert schemes["portalSession"]["in"] == "cookie"
    for path in doc["paths"].values():
        for operation in path.values():
            assert {"401", "403"} <= set(operation["responses"])


@pytest.fixture
def served(app):
    """The app on a real HTTP port (threads), so a browser gets its headers and CSP."""
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.mark.browser
def test_swagger_ui_runs_under_the_csp_and_tries_a_call(served, db, new_page):
    ingest(db, statuses=[("oficina", "sala", "porta", "online", "2026-11-22T12:00:00Z")])
    page = new_page()
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    page.goto(served + "/login?next=/api/docs")
    page.get_by_test_id("login-username").fill(ADMIN_USER)
    page.get_by_test_id("login-password").fill(ADMIN_PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.locator(".opblock")).to_have_count(11, timeout=15000)

    operation = page.locator("#operations-default-get_api_v1_devices")
    operation.locator(".opblock-summary").click()
    operation.locator(".try-out__btn").click()
    operation.locator(".execute").click()
    expect(operation.locator(".live-responses-table tbody .response-col_status")).to_have_text(
        "200", timeout=10000)
    expect(operation.locator(".responses-wrapper")).to_contain_text("oficina/sala/porta")
    assert not [p for p in problems if "Content Security Policy" in p or "failed" in p], problems
