"""The chart and the aggregate through the REST API (GET /api/v1/history, /api/v1/aggregates)
with Flask's test client: history.py plus what the API adds (key check, parameters, JSON), as
an API client pays it, less the HTTP socket."""
import json
from contextlib import contextmanager

from .history_queries import AGGREGATE_SPAN, ALL_DEVICES, ATTRIBUTE, CHART_SPAN, Case

KEY_NAME = "bench history"


class JsonRows:
    """An answer's body, decoded only when its rows are counted (after the timed calls: a
    client's parsing is not the server's time)."""

    def __init__(self, body, key):
        self.body, self.key = body, key

    def __len__(self):
        return len(json.loads(self.body)[self.key])


def iso(ts):
    return ts.isoformat().replace("+00:00", "Z")


@contextmanager
def api_cases(stack, end, topic, log):
    """Cases that call the API of the portal in this checkout ([] if it has none); the app is
    made at the first call (after PostgreSQL's restart) and shut down on exit."""
    try:
        from octopus_portal import create_app, shutdown
        from octopus_portal.keys import create_key
    except ImportError as exc:
        log(f"no REST API to measure here ({exc})")
        yield []
        return
    state = {}

    def get(path, answer_key, **params):
        if "client" not in state:
            c = stack.config
            state["app"] = create_app({
                "TESTING": True, "SECRET_KEY": c["PORTAL_SECRET_KEY"], "LIVE_ENABLED": False,
                "PGHOST": c["PGHOST"], "PGPORT": c["PGPORT"], "PGDATABASE": c["PGDATABASE"],
                "PGUSER": c["PGUSER"], "PGPASSWORD": c["PGPASSWORD"],
                "PORTAL_ADMIN_USER": c["PORTAL_ADMIN_USER"],
                "PORTAL_ADMIN_PASSWORD": c["PORTAL_ADMIN_PASSWORD"]})
            with stack.connect(portal=True) as conn:
                _, secret = create_key(conn, KEY_NAME, ["read"], None, None)
            state["headers"] = {"Authorization": f"Bearer {secret}"}
            state["client"] = state["app"].test_client()
        response = state["client"].get(path, headers=state["headers"], query_string=params)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.get_data(as_text=True)[:300]}")
        return JsonRows(response.get_data(), answer_key)

    chart = {"topic": topic, "resolution": "minute", "from": iso(end - CHART_SPAN), "to": iso(end)}
    day = {"devices": ALL_DEVICES, "attribute": ATTRIBUTE, "from": iso(end - AGGREGATE_SPAN),
           "to": iso(end)}
    try:
        yield [
            Case("chart-api", "  the same chart, GET /api/v1/history (JSON)",
                 lambda c, i: get("/api/v1/history", "points", **chart)),
            Case("aggregate-api", "  the same aggregate, GET /api/v1/aggregates (JSON)",
                 lambda c, i: get("/api/v1/aggregates", "minutes", **day)),
        ]
    finally:
        if "app" in state:
            shutdown(state["app"])
            with stack.connect() as conn:
                conn.execute("DELETE FROM api_keys WHERE name = %s", (KEY_NAME,))


def chart_topic(conn, attribute_id):
    """The topic of an attribute, for the API's `topic` parameter."""
    row = conn.execute("SELECT d.site || '/' || d.room || '/' || d.name || '/' || a.name"
                       " FROM attributes a JOIN devices d ON d.id = a.device_id WHERE a.id = %s",
                       (attribute_id,)).fetchone()
    return row[0]

