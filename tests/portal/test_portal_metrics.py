"""/metrics (issue 8): Prometheus's text format from the official client, with the workers'
counters, the broker's $SYS figures and what the database holds; readable with a login,
an API key with scope read for every site, or METRICS_TOKEN, and by nobody else."""
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from octopus_portal import config, platform_stats
from octopus_portal.keys import create_key

from .helpers import add_user, ingest

TOKEN = "a-scrape-token-" + "x" * 24
CLOSED_PORT_URL = "http://127.0.0.1:9"  # discard: nothing answers there


@pytest.fixture
def app(make_app):
    return make_app(METRICS_TOKEN=TOKEN, NODERED_URL=CLOSED_PORT_URL)


def bearer(value):
    return {"Authorization": f"Bearer {value}"}


def scrape(client, headers=None):
    """{sample name + sorted labels: value} of one scrape, parsed by prometheus_client."""
    response = client.get("/metrics", headers=headers or bearer(TOKEN))
    assert response.status_code == 200, response.get_data(as_text=True)
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def families(client):
    text = client.get("/metrics", headers=bearer(TOKEN)).get_data(as_text=True)
    return {family.name: family.type for family in text_string_to_metric_families(text)}


def worker_report(stored, since="2026-11-22T12:00:00.000Z", at="2026-11-22T12:00:10.000Z"):
    return json.dumps({"worker": "octopus-nodered-ingest", "received": stored + 5,
                       "stored": stored, "rejected": 3, "ignored": 2, "dropped": 0,
                       "buffered": 7, "batches": 4, "errors": 1, "since": since, "at": at,
                       "inflight": 12, "unconfirmed": 0, "redelivered": 0, "acked": stored,
                       "connected": True, "clockSlot": 0,
                       "writeSeconds": {"le": [0.01, 0.1, 1], "counts": [1, 3, 4], "sum": 0.5,
                                        "count": 4}}).encode()


def report(app, topic, payload):
    assert platform_stats.of(app).handle(topic, payload)


def test_anonymous_scrapers_get_401_with_what_to_send(client):
    for headers in ({}, bearer("wrong-token-of-some-length"), bearer(""),
                    {"X-API-Key": "oct_" + "x" * 43}, {"Authorization": f"Basic {TOKEN}"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "METRICS_TOKEN" in response.get_data(as_text=True)


def test_the_token_opens_metrics_and_nothing_else(client):
    assert client.get("/metrics", headers=bearer(TOKEN)).status_code == 200
    assert client.get("/api/v1/devices", headers=bearer(TOKEN)).status_code == 401
    for path in ("/", "/system", "/system/figures", "/keys"):
        response = client.get(path, headers=bearer(TOKEN))
        assert response.status_code == 302 and "/login" in response.headers["Location"], path


def test_without_a_configured_token_no_token_opens_it(make_app):
    client = make_app(NODERED_URL=CLOSED_PORT_URL).test_client()
    assert client.get("/metrics", headers=bearer(TOKEN)).status_code == 401


def test_api_keys_need_scope_read_and_every_site(app, client, db):
    keys = {name: create_key(db, name, scopes, site, None)[1] for name, scopes, site in (
        ("reader", ["read"], None), ("writer", ["write"], None), ("one-site", ["read"], "oficina"),
        ("revoked", ["read"], None))}
    db.execute("UPDATE api_keys SET revoked_at = now() WHERE name = 'revoked'")
    assert client.get("/metrics", headers=bearer(keys["reader"])).status_code == 200
    assert client.get("/metrics", headers={"X-API-Key": keys["reader"]}).status_code == 200
    assert client.get("/metrics", headers=bearer(keys["writer"])).status_code == 403
    refused = client.get("/metrics", headers=bearer(keys["one-site"]))
    assert refused.status_code == 403 and "oficina" in refused.get_data(as_text=True)
    assert client.get("/metrics", headers=bearer(keys["revoked"])).status_code == 401


def test_every_logged_in_role_may_read_it(app, db):
    client = add_user(app, db, "viewer")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")


def test_openmetrics_when_the_scraper_asks_for_it(client):
    response = client.get("/metrics", headers={**bearer(TOKEN),
                                               "Accept": "application/openmetrics-text"})
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.get_data(as_text=True).endswith("# EOF\n")


def test_the_ingest_counters_are_the_workers_own(app, client):
    report(app, "octopus/stats/ingest/octopus-nodered-ingest", worker_report(stored=1000))
    before = scrape(client)
    worker = (("worker", "octopus-nodered-ingest"),)
    assert before[("octopus_ingest_stored_total", worker)] == 1000
    assert before[("octopus_ingest_stored_created", worker)] == 1795348800.0  # its `since`
    assert before[("octopus_ingest_rejected_total", worker)] == 3
    assert before[("octopus_ingest_buffered", worker)] == 7
    assert before[("octopus_ingest_connected", worker)] == 1
    assert before[("octopus_ingest_report_timestamp_seconds", worker)] == 1795348810.0
    buckets = {dict(labels)["le"]: value for (name, labels), value in before.items()
               if name == "octopus_ingest_batch_write_seconds_bucket"}
    assert buckets == {"0.01": 1, "0.1": 3, "1.0": 4, "+Inf": 4}
    assert before[("octopus_ingest_batch_write_seconds_sum", worker)] == 0.5

    report(app, "octopus/stats/ingest/octopus-nodered-ingest",
           worker_report(stored=1037, at="2026-11-22T12:00:20.000Z"))
    after = scrape(client)
    assert after[("octopus_ingest_stored_total", worker)] - 1000 == 37


def test_each_worker_is_a_series_and_a_removed_report_goes(app, client):
    report(app, "octopus/stats/ingest/one", worker_report(stored=10))
    report(app, "octopus/stats/ingest/two", worker_report(stored=20))
    samples = scrape(client)
    assert samples[("octopus_ingest_stored_total", (("worker", "one"),))] == 10
    assert samples[("octopus_ingest_stored_total", (("worker", "two"),))] == 20
    report(app, "octopus/stats/ingest/one", b"")  # its retained report was cleared
    assert ("octopus_ingest_stored_total", (("worker", "one"),)) not in scrape(client)


def test_broker_figures_come_from_sys_topics(app, client):
    for topic, payload in (("clients/connected", b"5"), ("publish/messages/received", b"1234"),
                           ("publish/messages/dropped", b"2"), ("uptime", b"3600 seconds"),
                           ("store/messages/count", b"42"), ("version", b"mosquitto 2.0.11")):
        report(app, "$SYS/broker/" + topic, payload)
    samples = scrape(client)
    assert samples[("mosquitto_clients_connected", ())] == 5
    assert samples[("mosquitto_publish_received_total", ())] == 1234
    assert samples[("mosquitto_publish_dropped_total", ())] == 2
    assert samples[("mosquitto_uptime_seconds", ())] == 3600
    assert samples[("mosquitto_store_messages", ())] == 42
    assert families(client)["mosquitto_publish_received"] == "counter"


def test_database_figures_are_read_at_scrape_time(app, client, db):
    ingest(db, readings=[("s", "r", "d1", "t", "2026-11-22T12:00:00Z", 1.0, None, None),
                         ("s", "r", "d2", "t", "2026-11-22T12:00:00Z", 2.0, None, None)],
           statuses=[("s", "r", "d1", "online", "2026-11-22T12:00:00Z")],
           rejects=[("a/b", "wrong depth", b"x", 1)])
    samples = scrape(client)
    assert samples[("octopus_devices", (("status", "online"),))] == 1
    assert samples[("octopus_devices", (("status", "unknown"),))] == 1
    assert samples[("octopus_attributes", ())] == 2
    assert samples[("octopus_rollup_pending_minutes", ())] >= 1
    assert samples[("octopus_alerts_open", (("severity", "critical"),))] == 0
    assert ("octopus_reject_latest_timestamp_seconds", ()) in samples
    assert samples[("octopus_component_up", (("component", "database"),))] == 1
    assert samples[("octopus_component_up", (("component", "nodered"),))] == 0
    assert samples[("octopus_live_clients", ())] == 0
    assert ("process_resident_memory_bytes", ()) in samples  # the portal process's own


def test_modbus_poll_stats_per_device(app, client, db):
    device = db.execute(
        "INSERT INTO modbus_devices (site, room, name, host, port, profile)"
        " VALUES ('planta', 'subestacion', 'reconectador1', '127.0.0.1', 5020, 'osm27')"
        " RETURNING id").fetchone()["id"]
    db.execute("INSERT INTO modbus_poll_stats (device_id, worker, since, status, polls, ok,"
               " timeouts, connection_errors, consecutive_failures, late_ms_max)"
               " VALUES (%s, 'w', '2026-11-22T12:00:00Z', 'offline', 100, 90, 6, 4, 3, 250)",
               (device,))
    samples = scrape(client)
    labels = (("device", "reconectador1"), ("room", "subestacion"), ("site", "planta"))
    assert samples[("octopus_modbus_polls_total", labels)] == 100
    assert samples[("octopus_modbus_polls_ok_total", labels)] == 90
    assert samples[("octopus_modbus_poll_errors_total", tuple(sorted(labels + (("kind", "timeouts"),))))] == 6
    assert samples[("octopus_modbus_device_online", labels)] == 0
    assert samples[("octopus_modbus_consecutive_failures", labels)] == 3
    assert samples[("octopus_modbus_poll_late_max_seconds", labels)] == 0.25


@pytest.mark.parametrize("settings, named", [
    ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN"),
    ({"NODERED_URL": "127.0.0.1:1880"}, "NODERED_URL"),
])
def test_bad_settings_are_refused_at_start(settings, named):
    with pytest.raises(config.ConfigError, match=named):
        config.validate({**config.DEFAULTS, "SECRET_KEY": "k", **settings})
