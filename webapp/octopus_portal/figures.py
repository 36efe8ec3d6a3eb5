"""The platform's figures in one place, for /metrics (metrics.py) and the System page
(system.py): what the workers and the broker last reported over MQTT (platform_stats.py),
a few cheap queries run now, the live clients of this process, and the health checks.

Why each figure comes from where it does: doc/operations.md, "Metrics and health".
"""
import psycopg

from . import health, live, platform_stats
from .db import POOL
from .extensions import socketio

# Each query reads a small table or an index, never measurements: a scrape every few
# seconds must cost nothing next to the ingest.
DATABASE_SQL = {
    "devices": "SELECT coalesce(status, 'unknown') AS status, count(*) AS n"
               " FROM devices GROUP BY 1",
    "attributes": "SELECT count(*) AS n, extract(epoch FROM max(last_seen)) AS last_reading_at"
                  " FROM attributes",
    # minutes written but not rolled up yet, and how far behind the oldest is
    "rollups": "SELECT count(DISTINCT minute) AS pending_minutes,"
               " coalesce(extract(epoch FROM now() - min(minute)), 0) AS lag_seconds"
               " FROM rollup_invalidations",
    "alerts": "SELECT severity, count(*) AS n FROM alerts WHERE cleared_at IS NULL"
              " GROUP BY severity",
    "rejects": "SELECT extract(epoch FROM max(received_at)) AS latest_at FROM rejects",
}
MODBUS_SQL = """
SELECT d.site, d.room, d.name AS device, d.enabled, s.worker, s.status, s.polls, s.ok,
       s.timeouts, s.exceptions, s.connection_errors, s.garbage, s.overflows,
       s.consecutive_failures, s.late_ms_max,
       extract(epoch FROM s.since) AS since, extract(epoch FROM s.updated_at) AS updated_at
  FROM modbus_poll_stats s JOIN modbus_devices d ON d.id = s.device_id
 ORDER BY d.site, d.room, d.name"""
ALERT_SEVERITIES = ("info", "warning", "critical")


def database_figures(app):
    """The figures PostgreSQL holds now ({"database": ..., "modbus": [...]}), or None
    for both if it does not answer."""
    try:
        with app.extensions[POOL].connection(timeout=health.TIMEOUT_S) as conn:
            rows = {name: conn.execute(sql).fetchall() for name, sql in DATABASE_SQL.items()}
            modbus = [dict(row) for row in conn.execute(MODBUS_SQL)]
    except psycopg.Error as exc:
        app.logger.warning("figures: PostgreSQL did not answer (%s)", exc)
        return None, None
    alerts = {severity: 0 for severity in ALERT_SEVERITIES}
    alerts.update({row["severity"]: row["n"] for row in rows["alerts"]})
    attributes = rows["attributes"][0]
    return {
        "devices": {row["status"]: row["n"] for row in rows["devices"]},
        "attributes": attributes["n"],
        "last_reading_at": as_float(attributes["last_reading_at"]),
        "rollup_pending_minutes": rows["rollups"][0]["pending_minutes"],
        "rollup_lag_seconds": as_float(rows["rollups"][0]["lag_seconds"]),
        "alerts_open": alerts,
        "latest_reject_at": as_float(rows["rejects"][0]["latest_at"]),
    }, [{**row, "since": as_float(row["since"]), "updated_at": as_float(row["updated_at"])}
        for row in modbus]


def as_float(value):
    """A numeric (PostgreSQL's extract gives Decimal) as a float; None stays None."""
    return None if value is None else float(value)


def live_clients():
    """Browser connections to this process's live stream (either namespace: a page that only
    shows the alerts badge follows /alerts alone)."""
    server = socketio.server
    if server is None:
        return 0
    connections = set()
    for namespace in ("/", live.ALERTS_NAMESPACE):
        try:
            connections.update(eio_sid for _, eio_sid in
                               server.manager.get_participants(namespace, live.ROOM))
        except KeyError:  # nobody has joined that room yet
            continue
    return len(connections)


def collect(app):
    """Every figure, as one dict (see the System page's script for its use)."""
    reports = platform_stats.of(app).snapshot()
    database, modbus = database_figures(app)
    bridge = app.extensions.get(live.EXTENSION)
    return {
        **reports,
        "database": database,
        "modbus_devices": modbus,
        "live_clients": live_clients(),
        "portal_mqtt_connected": bool(bridge and bridge.started and bridge.client.is_connected()),
        "health": health.status(app),
    }
