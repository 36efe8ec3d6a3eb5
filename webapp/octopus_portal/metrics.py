"""/metrics: the platform's figures (figures.py) in Prometheus's text format, built by the
official prometheus_client from a collector that reads them at scrape time.

Who may read it: a logged-in user (any role), an API key with scope read for every site, or
a scraper sending METRICS_TOKEN (api/auth.py recognises both). Never anonymous: without
one of them the answer is 401, not the login page, since a scraper cannot log in.
"""
from flask import Blueprint, current_app, request
from flask_login import current_user
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString

from . import figures, health
from .api.auth import KeyUser
from .extensions import login_manager
from .platform_stats import timestamp

bp = Blueprint("metrics", __name__)
EXTENSION = "octopus_metrics_registry"  # key in app.extensions
TEXT = {"Content-Type": "text/plain; charset=utf-8"}

# octopus/stats/ingest/<worker> fields: each worker's own counters since its start
INGEST_COUNTERS = (
    ("received", "octopus_ingest_received", "MQTT messages the ingest worker took"),
    ("stored", "octopus_ingest_stored", "Readings stored (inserted rows; redeliveries of "
                                        "stored readings are not counted again)"),
    ("rejected", "octopus_ingest_rejected", "Messages stored as rejects"),
    ("ignored", "octopus_ingest_ignored", "Commands and platform topics, not stored"),
    ("dropped", "octopus_ingest_dropped", "Messages not taken: buffer full or stopping "
                                          "(the broker sends them again)"),
    ("redelivered", "octopus_ingest_redelivered", "Broker redeliveries recognised as stored"),
    ("batches", "octopus_ingest_batches", "Batches committed"),
    ("errors", "octopus_ingest_write_errors", "Failed batch writes (retried)"),
)
INGEST_GAUGES = (
    ("buffered", "octopus_ingest_buffered", "Messages held by the worker, not yet committed"),
    ("inflight", "octopus_ingest_inflight", "Messages the broker handed over, not yet "
                                            "acknowledged"),
    ("connected", "octopus_ingest_connected", "1 if the worker's MQTT session is connected"),
)
# platform_stats.SYS_FIGURES names -> (metric, counter?, help)
BROKER = {
    "clients_connected": ("mosquitto_clients_connected", False, "Clients connected"),
    "clients_disconnected": ("mosquitto_clients_disconnected", False,
                             "Persistent sessions whose client is away"),
    "messages_received": ("mosquitto_messages_received", True, "MQTT packets received"),
    "messages_sent": ("mosquitto_messages_sent", True, "MQTT packets sent"),
    "publish_received": ("mosquitto_publish_received", True, "PUBLISH messages received"),
    "publish_sent": ("mosquitto_publish_sent", True, "PUBLISH messages sent"),
    "publish_dropped": ("mosquitto_publish_dropped", True,
                        "PUBLISH messages dropped (queue limits, offline clients)"),
    "bytes_received": ("mosquitto_received_bytes", True, "Bytes received"),
    "bytes_sent": ("mosquitto_sent_bytes", True, "Bytes sent"),
    "store_messages": ("mosquitto_store_messages", False,
                       "Messages held by the broker (retained and queued)"),
    "store_bytes": ("mosquitto_store_bytes", False, "Payload bytes held by the broker"),
    "subscriptions": ("mosquitto_subscriptions", False, "Subscriptions"),
    "retained_messages": ("mosquitto_retained_messages", False, "Retained messages"),
    "uptime_seconds": ("mosquitto_uptime_seconds", False, "Seconds since the broker started"),
}
# modbus_poll_stats columns: counters since the poller started on the device (`since`)
MODBUS_COUNTERS = (("polls", "octopus_modbus_polls", "Poll attempts"),
                   ("ok", "octopus_modbus_polls_ok", "Polls answered correctly"),
                   ("overflows", "octopus_modbus_poll_overflows",
                    "Polls skipped: the previous one still ran"))
MODBUS_ERRORS = ("timeouts", "exceptions", "connection_errors", "garbage")
MODBUS_LABELS = ("site", "room", "device")


def gauge(name, documentation, value, labels=None):
    family = GaugeMetricFamily(name, documentation, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), value)
    return family


def ingest_families(workers):
    """The workers' counters and gauges, one series per worker, and their batch times."""
    for field, name, doc in INGEST_COUNTERS:
        family = CounterMetricFamily(name, doc, labels=["worker"])
        for worker, stats in workers.items():
            if isinstance(stats.get(field), (int, float)):
                family.add_metric([worker], stats[field], created=timestamp(stats.get("since")))
        yield family
    for field, name, doc in INGEST_GAUGES:
        family = GaugeMetricFamily(name, doc, labels=["worker"])
        for worker, stats in workers.items():
            if isinstance(stats.get(field), (bool, int, float)):
                family.add_metric([worker], float(stats[field]))
        yield family
    latency = HistogramMetricFamily("octopus_ingest_batch_write_seconds",
                                    "Time to write and commit one batch", labels=["worker"])
    reported = GaugeMetricFamily("octopus_ingest_report_timestamp_seconds",
                                 "When the worker last reported (it does every 10 s)",
                                 labels=["worker"])
    for worker, stats in workers.items():
        times = stats.get("writeSeconds")
        if isinstance(times, dict) and len(times.get("le", ())) == len(times.get("counts", ())):
            buckets = [(floatToGoString(le), n) for le, n in zip(times["le"], times["counts"])]
            latency.add_metric([worker], buckets + [("+Inf", times["count"])], times["sum"])
        if timestamp(stats.get("at")) is not None:
            reported.add_metric([worker], timestamp(stats["at"]))
    yield latency
    yield reported


def broker_families(broker):
    """Mosquitto's $SYS figures; its counters start again when it restarts."""
    for key, (name, is_counter, doc) in BROKER.items():
        if key in broker:
            kind = CounterMetricFamily if is_counter else GaugeMetricFamily
            yield kind(name, doc, value=broker[key])


def database_families(database):
    """What the database holds now."""
    if database is None:
        return
    devices = GaugeMetricFamily("octopus_devices", "Devices by availability", labels=["status"])
    for status, n in sorted(database["devices"].items()):
        devices.add_metric([status], n)
    yield devices
    yield gauge("octopus_attributes", "Attributes (measured quantities) known",
                database["attributes"])
    if database["last_reading_at"] is not None:
        yield gauge("octopus_last_reading_timestamp_seconds", "When a reading was last stored",
                    database["last_reading_at"])
    yield gauge("octopus_rollup_pending_minutes", "Minutes written, not yet rolled up",
                database["rollup_pending_minutes"])
    yield gauge("octopus_rollup_lag_seconds", "Age of the oldest minute not yet rolled up",
                database["rollup_lag_seconds"])
    alerts = GaugeMetricFamily("octopus_alerts_open", "Alerts not cleared", labels=["severity"])
    for severity, n in database["alerts_open"].items():
        alerts.add_metric([severity], n)
    yield alerts
    if database["latest_reject_at"] is not None:
        yield gauge("octopus_reject_latest_timestamp_seconds", "When a reject was last stored",
                    database["latest_reject_at"])


def modbus_families(devices):
    """Each polled device's figures (modbus_poll_stats)."""
    if devices is None:
        return
    families = {name: CounterMetricFamily(name, doc, labels=list(MODBUS_LABELS))
                for _, name, doc in MODBUS_COUNTERS}
    errors = CounterMetricFamily("octopus_modbus_poll_errors", "Failed polls by kind",
                                 labels=[*MODBUS_LABELS, "kind"])
    online = GaugeMetricFamily("octopus_modbus_device_online", "1 online, 0 offline",
                               labels=list(MODBUS_LABELS))
    failures = GaugeMetricFamily("octopus_modbus_consecutive_failures",
                                 "Failed polls in a row", labels=list(MODBUS_LABELS))
    late = GaugeMetricFamily("octopus_modbus_poll_late_max_seconds",
                             "Worst lateness of a poll against its schedule",
                             labels=list(MODBUS_LABELS))
    for row in devices:
        labels = [row[key] for key in MODBUS_LABELS]
        for field, name, _ in MODBUS_COUNTERS:
            families[name].add_metric(labels, row[field], created=row["since"])
        for kind in MODBUS_ERRORS:
            errors.add_metric([*labels, kind], row[kind], created=row["since"])
        if row["status"] is not None:
            online.add_metric(labels, 1 if row["status"] == "online" else 0)
        failures.add_metric(labels, row["consecutive_failures"])
        if row["late_ms_max"] is not None:
            late.add_metric(labels, row["late_ms_max"] / 1000)
    yield from (*families.values(), errors, online, failures, late)


class OctopusCollector:
    """Reads every figure when Prometheus scrapes, so that nothing is counted here: the
    values are right after a portal restart and the same from every portal process."""

    def __init__(self, app):
        self.app = app

    def collect(self):
        found = figures.collect(self.app)
        up = GaugeMetricFamily("octopus_component_up", "1 if the component passes its health "
                               "check (/healthz)", labels=["component"])
        for component in health.COMPONENTS:
            up.add_metric([component], 0 if found["health"][component] else 1)
        yield up
        yield gauge("octopus_live_clients", "Browsers on this portal process's live stream",
                    found["live_clients"])
        yield from ingest_families(found["ingest"])
        yield from broker_families(found["broker"])
        yield from database_families(found["database"])
        yield from modbus_families(found["modbus_devices"])


def refusal():
    """A 403 for an API key that may not read every site's figures, else None."""
    if isinstance(current_user, KeyUser):
        key = current_user.api_key
        if "read" not in key.scopes:
            return "this API key has no scope read, which /metrics needs\n", 403, TEXT
        if key.site is not None:
            return (f"this API key only covers site {key.site!r}; /metrics covers the whole "
                    "platform: use a key for every site, or METRICS_TOKEN\n", 403, TEXT)
    return None


@bp.get("/metrics")
def metrics():
    """The figures in Prometheus's text format (OpenMetrics if the scraper asks for it)."""
    refused = refusal()
    if refused:
        return refused
    encode, content_type = choose_encoder(request.headers.get("Accept"))
    return encode(current_app.extensions[EXTENSION]), 200, {"Content-Type": content_type,
                                                            "Cache-Control": "no-store"}


@bp.errorhandler(401)
def unauthorized(exc):
    """What a scraper without credentials needs to hear."""
    return ("send 'Authorization: Bearer <METRICS_TOKEN>' or an API key with scope read, "
            "or log in\n", 401, {**TEXT, "WWW-Authenticate": 'Bearer realm="octopus metrics"'})


def init_app(app):
    """Register /metrics with its own registry (the portal process's figures too)."""
    registry = CollectorRegistry()
    registry.register(OctopusCollector(app))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    app.extensions[EXTENSION] = registry
    login_manager.blueprint_login_views[bp.name] = None  # 401 for anonymous, no redirect
    app.register_blueprint(bp)
