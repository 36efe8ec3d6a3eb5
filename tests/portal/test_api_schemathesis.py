"""Schemathesis against the served OpenAPI document: generated requests, valid and invalid,
with a valid read+write key, never get a 5xx and every answer matches the document."""
import re
from datetime import datetime, timedelta, timezone

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from octopus_portal import live
from octopus_portal.keys import create_key

from .helpers import ingest

NOW = datetime.now(timezone.utc).replace(microsecond=0)
# Per operation and generation mode; the whole test stays well under a minute.
MAX_EXAMPLES = 40
# Valid input can still be refused: an inverted or too long range, a topic that is not
# stored. The schema cannot say that, so "valid by the schema means 2xx" is not checked.
EXCLUDED_CHECKS = [positive_data_acceptance]


@pytest.fixture
def api_schema(make_app, mqtt_broker, db):
    """(schema, headers): the app's own OpenAPI document, loaded through the app with a key,
    over a little stored data, connected to a real broker (POST /readings publishes)."""
    readings = [("oficina", "servidores", f"servidor{d}", "temperatura",
                 NOW - timedelta(minutes=i), 20.0 + i + d, None, "°C")
                for d in range(2) for i in range(30)]
    readings.append(("oficina", "sala", "porta", "estado", NOW, None, "open", None))
    ingest(db, readings=readings, statuses=[("oficina", "sala", "porta", "online", NOW)])
    db.execute("SELECT run_maintenance(0, 0)")
    _, secret = create_key(db, "schemathesis", ["read", "write"], None, None)
    headers = {"Authorization": f"Bearer {secret}"}
    user, password = mqtt_broker.user("PORTAL")
    app = make_app(LIVE_ENABLED=True, MQTT_HOST="127.0.0.1", MQTT_PORT=mqtt_broker.port,
                   MQTT_PORTAL_USER=user, MQTT_PORTAL_PASSWORD=password)
    assert app.extensions[live.EXTENSION].subscribed.wait(10)
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=headers), headers


def test_the_document_covers_every_api_route(api_schema):
    schema, _ = api_schema
    documented = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    app = schema.app
    routes = {(method, re.sub(r"<(?:int:)?(\w+)>", r"{\1}", rule.rule))
              for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/api/v1/") and rule.rule != "/api/v1/openapi.json"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == routes


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_get_no_5xx_and_conform(api_schema, mode):
    schema, headers = api_schema
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(headers=headers, excluded_checks=EXCLUDED_CHECKS)

        check()
