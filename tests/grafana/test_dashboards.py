"""Issue 8, acceptance 2: every SQL query of the provisioned Grafana dashboards (panels and
template variables) runs against the real schema as Grafana's read-only role, with Grafana's
time macros and variables expanded as Grafana does (grafana_sql.py), and returns rows for the
simulated data. And the provisioning is well formed: one data source, on the read-only role,
whose uid every dashboard names; dashboards where compose mounts them."""
import json
import re
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest
import yaml
from psycopg import errors

from tests.helpers import ROOT

from .grafana_sql import GrafanaSQLError, expand, panel_interval_ms

GRAFANA = ROOT / "grafana"
DATASOURCES = GRAFANA / "provisioning/datasources/octopus.yaml"
PROVIDERS = GRAFANA / "provisioning/dashboards/octopus.yaml"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
EXPECTED = {"octopus-devices", "octopus-environment", "octopus-electrical", "octopus-platform"}
# Panels that may read raw readings (`measurements`), and why; every other panel reads the
# rollups, the registry's last values or the health views, so a 30-day view stays cheap.
RAW_READERS = {("octopus-electrical", "State changes"):
               "states are text, which the rollups do not hold; one attribute, by its index"}
# Ranges a dashboard is looked at over: Grafana's $__interval differs for each.
RANGES = {"3h": timedelta(hours=3), "2d": timedelta(days=2), "30d": timedelta(days=30)}


def load_yaml(path):
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose_grafana():
    return load_yaml(ROOT / "docker-compose.yaml")["services"]["grafana"]


def dashboards():
    return {path.stem: json.loads(path.read_text()) for path in DASHBOARD_FILES}


def panels(node):
    """Every panel, those inside rows too."""
    for panel in node.get("panels", []):
        yield panel
        yield from panels(panel)


def variable_sql(variable):
    query = variable.get("query")
    return query.get("rawSql") or query.get("query") if isinstance(query, dict) else query


def queries(dashboard):
    """(where, SQL, panel or None) of every query: template variables, then panel targets."""
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            yield f"variable ${variable['name']}", variable_sql(variable), None
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target["rawSql"], panel


def datasource_references(node, path="$"):
    """(path, reference) of every "datasource" in the JSON."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield f"{path}.{key}", value
            else:
                yield from datasource_references(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from datasource_references(value, f"{path}[{i}]")


# -- provisioning ----------------------------------------------------------------------------

def test_the_data_source_is_the_read_only_role_from_the_environment(compose_grafana):
    config = load_yaml(DATASOURCES)
    assert config["apiVersion"] == 1
    [source] = config["datasources"]
    assert source["type"] == "grafana-postgresql-datasource" and source["uid"]
    # read from Grafana's environment, never written here
    assert source["user"] == "${GRAFANA_PGUSER}"
    assert source["secureJsonData"] == {"password": "${GRAFANA_PGPASSWORD}"}
    assert "password" not in source and "password" not in source.get("jsonData", {})
    assert source["url"] == "${PGHOST}:${PGPORT}"
    assert source["jsonData"]["database"] == "${PGDATABASE}"
    # every variable it names is set for the container, the role from GRAFANA_PGUSER (the
    # read-only one), never from the owner's PGUSER / PGPASSWORD
    environment = compose_grafana["environment"]
    named = set(re.findall(r"\$\{(\w+)\}", DATASOURCES.read_text()))
    assert named <= set(environment), named - set(environment)
    assert environment["GRAFANA_PGUSER"].startswith("${GRAFANA_PGUSER:-")
    assert environment["GRAFANA_PGPASSWORD"].startswith("${GRAFANA_PGPASSWORD:?")
    assert environment["PGHOST"] == "postgres"
    assert "PGUSER" not in environment and "PGPASSWORD" not in environment


def test_the_dashboards_are_provisioned_from_where_compose_mounts_them(compose_grafana):
    config = load_yaml(PROVIDERS)
    assert config["apiVersion"] == 1
    [provider] = config["providers"]
    assert provider["type"] == "file" and provider["allowUiUpdates"] is False
    mounts = {}
    for volume in compose_grafana["volumes"]:
        source, target, *mode = volume.split(":")
        mounts[source] = (target, mode == ["ro"])
    assert mounts["./grafana/dashboards"] == (provider["options"]["path"], True)
    assert mounts["./grafana/provisioning/datasources"] == (
        "/etc/grafana/provisioning/datasources", True)
    assert mounts["./grafana/provisioning/dashboards"] == (
        "/etc/grafana/provisioning/dashboards", True)
    home = compose_grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    folder, _, file = home.rpartition("/")
    assert folder == provider["options"]["path"] and (GRAFANA / "dashboards" / file).is_file()


def test_the_dashboards_are_the_four_and_well_formed():
    found = dashboards()
    assert {d["uid"] for d in found.values()} == EXPECTED
    assert len({d["title"] for d in found.values()}) == len(found)
    for name, dashboard in found.items():
        assert dashboard.get("id") is None, f"{name}: an id ties the file to one Grafana"
        ids = [p["id"] for p in panels(dashboard)]
        assert ids and len(ids) == len(set(ids)), f"{name}: panel ids must be unique"
        for panel in panels(dashboard):
            if panel["type"] == "row":
                continue
            assert panel["targets"], f"{name}: {panel['title']} has no query"
            for target in panel["targets"]:
                assert target["rawQuery"] and target["editorMode"] == "code"
                assert target["format"] in ("time_series", "table"), panel["title"]
        for variable in dashboard["templating"]["list"]:
            if "definition" in variable:  # what the variables list shows
                assert variable["definition"] == variable_sql(variable), variable["name"]


def test_every_data_source_reference_is_the_provisioned_one():
    [source] = load_yaml(DATASOURCES)["datasources"]
    for name, dashboard in dashboards().items():
        references = list(datasource_references(dashboard))
        assert references, name
        for path, reference in references:
            assert reference == {"type": source["type"], "uid": source["uid"]}, \
                f"{name} {path}: {reference}"


def test_time_series_read_the_rollups_in_buckets_of_a_minute_or_more():
    """A chart over 30 days must not scan raw readings: only RAW_READERS read
    `measurements`; a per-minute series is never bucketed finer than the minute."""
    for name, dashboard in dashboards().items():
        for where, query, panel in queries(dashboard):
            reads_raw = re.search(r"\bmeasurements\b", query)
            key = (dashboard["uid"], panel and panel["title"])
            assert bool(reads_raw) == (key in RAW_READERS), f"{name} {where} reads raw rows"
            rollups = re.search(r"\b(minute_series|group_minute_series|group_minute)\b", query)
            if rollups and panel["type"] == "timeseries":
                assert panel.get("interval") == "1m", f"{name} {where}: minimum interval 1m"
                assert "$__timeGroupAlias(minute, $__interval)" in query, f"{name} {where}"


# -- every query against the schema ----------------------------------------------------------

def run(conn, sql):
    """Rows of one statement, in a transaction rolled back afterwards (read-only anyway)."""
    with conn.transaction(force_rollback=True):
        return conn.execute(sql).fetchall()


def choose_variables(conn, dashboard, start, end):
    """Each template variable's value, chosen among what its own query returns for the data
    (itself expanded with the variables before it): every value for a multi-value or "All"
    variable, as Grafana's "All" sends, the first one otherwise."""
    chosen = {}
    for variable in dashboard["templating"]["list"]:
        sql = expand(variable_sql(variable), start, end, 60_000, chosen)
        rows = run(conn, sql)
        assert rows, f"variable ${variable['name']} offers no value for the data: {sql}"
        # a query may name its columns __text / __value; otherwise the first column
        column = 1 if len(rows[0]) > 1 else 0
        values = [row[column] for row in rows]
        multi = variable.get("multi") or variable.get("includeAll")
        chosen[variable["name"]] = (values if multi else values[0], multi)
    return chosen


def expanded_queries(conn, dashboard, span, end):
    start = end - span
    variables = choose_variables(conn, dashboard, start, end)
    for where, query, panel in queries(dashboard):
        interval = panel_interval_ms(start, end, panel and panel.get("interval"))
        yield where, expand(query, start, end, interval, variables)


@pytest.fixture(scope="module")
def reader(dashboard_data):
    with psycopg.connect(**dashboard_data.reader) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] != dashboard_data.owner["user"]
        yield conn


@pytest.mark.parametrize("span", sorted(RANGES), ids=str)
@pytest.mark.parametrize("name", [p.stem for p in DASHBOARD_FILES])
def test_every_query_returns_rows_as_the_grafana_role(reader, dashboard_data, name, span):
    dashboard = dashboards()[name]
    count = 0
    for where, sql in expanded_queries(reader, dashboard, RANGES[span], dashboard_data.now):
        try:
            rows = run(reader, sql)
        except psycopg.Error as exc:
            pytest.fail(f"{name} {where} fails as Grafana's role: {exc}\n{sql}")
        assert rows, f"{name} {where} returns no rows over {span}:\n{sql}"
        count += 1
    assert count >= 4


def test_time_series_come_sorted_by_time_with_a_value(reader, dashboard_data):
    """Grafana needs a time series' rows ordered by time, with a numeric value."""
    for name, dashboard in dashboards().items():
        by_title = {p["title"]: p for p in panels(dashboard)}
        for where, sql in expanded_queries(reader, dashboard, RANGES["3h"], dashboard_data.now):
            title = where.split("'")[1] if where.startswith("panel") else None
            if not title or by_title[title]["type"] != "timeseries":
                continue
            with reader.transaction(force_rollback=True):
                cursor = reader.execute(sql)
                names = [c.name for c in cursor.description]
                rows = cursor.fetchall()
            assert names[0] == "time", f"{name} {where}: {names}"
            times = [row[0] for row in rows]
            assert times == sorted(times), f"{name} {where}"
            assert rows and all(isinstance(row[-1], (int, float, Decimal)) for row in rows), \
                f"{name} {where}"


def test_the_state_panel_shows_the_trip_of_the_simulated_recloser(reader, dashboard_data):
    dashboard = dashboards()["electrical"]
    for where, sql in expanded_queries(reader, dashboard, RANGES["3h"], dashboard_data.now):
        if "State changes" in where:
            states = [row[1] for row in run(reader, sql)]
            assert states[0] == "closed" and "open" in states and states[-1] == "closed", states
            return
    pytest.fail("no State changes panel")


# -- the checks above can fail ---------------------------------------------------------------

def test_a_misspelt_column_or_an_unknown_macro_fails(reader, dashboard_data):
    dashboard = dashboards()["environment"]
    where, sql = next((w, s) for w, s in expanded_queries(reader, dashboard, RANGES["3h"],
                                                          dashboard_data.now)
                      if w.startswith("panel"))
    assert run(reader, sql)
    with pytest.raises(errors.UndefinedColumn):
        run(reader, sql.replace("sum(sum)", "sum(summ)"))
    with pytest.raises(GrafanaSQLError, match="unknown macro"):
        expand("SELECT 1 WHERE $__timeFilterr(minute)", dashboard_data.now, dashboard_data.now,
               60_000)
    with pytest.raises(GrafanaSQLError, match="unknown variable"):
        expand("SELECT 1 WHERE site IN ($sitio)", dashboard_data.now, dashboard_data.now,
               60_000)
    # a site that is not in the data: the query runs and returns nothing, which the test
    # above reports
    empty = next(s for w, s in expanded_queries(reader, dashboard, RANGES["3h"],
                                                dashboard_data.now) if w == where)
    assert not run(reader, re.sub(r"p_sites => ARRAY\[[^\]]*\]", "p_sites => ARRAY['nowhere']",
                                  empty))
