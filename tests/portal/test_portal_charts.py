"""The History and Aggregates pages as the server sends them: behind the login, their
scripts and the chart library served from the portal itself, wired to API endpoints that
exist, and reachable from the navigation and the device tree. What they do in a browser is
tests/integration/test_history_browser.py."""
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from octopus_portal.charts import API_URLS, RANGE_PRESETS

STATIC = Path(__file__).resolve().parents[2] / "webapp" / "octopus_portal" / "static"
PAGES = ("/history", "/aggregates")


class Elements(HTMLParser):
    """Every start tag of a page as (tag, attributes), in order."""

    def __init__(self, html):
        super().__init__()
        self.tags = []
        self.inline_scripts = 0
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def find(self, tag=None, **attrs):
        return [a for t, a in self.tags if (tag is None or t == tag)
                and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]


def page(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response, Elements(response.get_data(as_text=True))


@pytest.mark.parametrize("path", PAGES + ("/history?topic=a/b/c/d&range=7d",))
def test_pages_need_a_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("path", PAGES)
def test_pages_load_the_chart_library_and_their_script_from_the_portal(logged_in, path):
    response, html = page(logged_in, path)
    scripts = [s["src"] for s in html.find("script")]
    assert "/static/vendor/uplot/uPlot.iife.min.js" in scripts
    assert f"/static{path}.js" in scripts
    assert html.find("script", src=f"/static{path}.js")[0]["type"] == "module"
    assert html.find("link", href="/static/vendor/uplot/uPlot.min.css")
    # everything from 'self': no inline script, no script from another host
    assert html.inline_scripts == 0
    assert all(src.startswith("/static/") for src in scripts)
    assert "script-src" not in response.headers["Content-Security-Policy"]  # default-src 'self'
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_have_range_presets_a_custom_range_and_a_csv_button(logged_in, path):
    _, html = page(logged_in, path)
    presets = [(b["data-range"], int(b["data-ms"])) for b in html.find("button") if "data-ms" in b]
    assert presets == [(key, ms) for key, _, ms in RANGE_PRESETS]
    assert [key for key, _ in presets] == ["1h", "24h", "7d", "30d"]
    assert {i["name"] for i in html.find("input", type="datetime-local")} == {"from", "to"}
    assert html.find("button", data_range="custom")
    assert html.find("a", data_testid="download-csv")
    assert html.find(data_testid="resolution") and html.find(data_testid="time-zone")
    error = html.find(data_testid="chart-error")[0]
    assert error.get("role") == "alert"  # API errors are announced, not swallowed


@pytest.mark.parametrize("path, urls", [
    ("/history", {"attributes", "history", "export"}),
    ("/aggregates", {"attributes", "aggregates", "export"}),
])
def test_pages_point_their_scripts_at_api_endpoints_that_exist(app, logged_in, path, urls):
    _, html = page(logged_in, path)
    root = html.find(id=path.strip("/"))[0]
    given = {key[len("data-"):-len("-url")]: value for key, value in root.items()
             if key.startswith("data-") and key.endswith("-url")}
    assert given == {name: API_URLS[name] for name in urls}
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    missing = [url for url in given.values() if url not in routes]
    assert not missing, f"the pages call API endpoints the portal does not serve: {missing}"


def test_the_navigation_links_to_both_pages_and_marks_the_current_one(logged_in):
    _, devices = page(logged_in, "/")
    assert devices.find("a", data_testid="nav-history")[0]["href"] == "/history"
    assert devices.find("a", data_testid="nav-aggregates")[0]["href"] == "/aggregates"
    assert "aria-current" not in devices.find("a", data_testid="nav-history")[0]
    for path, testid in (("/history", "nav-history"), ("/aggregates", "nav-aggregates")):
        _, html = page(logged_in, path)
        assert html.find("a", data_testid=testid)[0].get("aria-current") == "page"


def test_the_device_tree_links_attributes_to_their_history(logged_in):
    # the links are made by static/history-links.js (rows also appear live); the page gives
    # it the History page's address and loads it
    _, html = page(logged_in, "/")
    assert html.find(id="device-tree")[0]["data-history-url"] == "/history"
    assert html.find("script", src="/static/history-links.js")[0]["type"] == "module"


def test_the_vendored_chart_library_is_served(client):
    script = client.get("/static/vendor/uplot/uPlot.iife.min.js")
    assert script.status_code == 200
    assert script.get_data(as_text=True).startswith("/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
    assert client.get("/static/vendor/uplot/uPlot.min.css").status_code == 200
    assert (STATIC / "vendor" / "uplot" / "LICENSE").read_text().startswith("The MIT License")


NAMED_IMPORT = re.compile(r'import\s*\{([^}]*)\}\s*from\s+"\./([\w.-]+)"')
EXPORT = re.compile(r"^export (?:async )?(?:function|class|const|let) (\w+)", re.MULTILINE)


@pytest.mark.parametrize("module", ["history.js", "aggregates.js"])
def test_page_scripts_import_only_names_their_modules_export(module):
    # no build step: a typo in an import would only show as a blank page in the browser
    imports = NAMED_IMPORT.findall((STATIC / module).read_text())
    assert len(imports) >= 3
    for names, target in imports:
        exported = set(EXPORT.findall((STATIC / target).read_text()))
        wanted = {name.strip() for name in names.split(",") if name.strip()}
        assert wanted <= exported, f"{module} imports {wanted - exported} from {target}"
