"""What the platform says about itself over MQTT, as last heard: the ingest workers' and
Modbus pollers' retained statistics (octopus/stats/...) and Mosquitto's $SYS topics.

The portal's MQTT client (live.py) feeds it. Everything here is retained on the broker, so a
portal that (re)starts has it all again at once, and every portal process holds the same.
"""
import json
import threading
from datetime import datetime

STATS_TOPIC = "octopus/stats/#"
STATS_PREFIX = "octopus/stats/"
SYS_TOPIC = "$SYS/broker/#"
SYS_PREFIX = "$SYS/broker/"
EXTENSION = "octopus_platform_stats"  # key in app.extensions
# Workers kept per kind: far more than a deployment runs, and a bound on the series /metrics
# serves should something publish statistics under many names.
MAX_WORKERS = 64

# The $SYS topics kept (Mosquitto 2), under the names the portal gives them.
SYS_FIGURES = {
    "clients/connected": "clients_connected",
    "clients/disconnected": "clients_disconnected",
    "messages/received": "messages_received",
    "messages/sent": "messages_sent",
    "publish/messages/received": "publish_received",
    "publish/messages/sent": "publish_sent",
    "publish/messages/dropped": "publish_dropped",
    "bytes/received": "bytes_received",
    "bytes/sent": "bytes_sent",
    "store/messages/count": "store_messages",
    "store/messages/bytes": "store_bytes",
    "subscriptions/count": "subscriptions",
    "retained messages/count": "retained_messages",
    "uptime": "uptime_seconds",
    "load/publish/received/1min": "publish_received_per_minute",
    "load/publish/sent/1min": "publish_sent_per_minute",
    "load/publish/dropped/1min": "publish_dropped_per_minute",
}


def timestamp(text):
    """Seconds since the epoch of an ISO 8601 time, or None."""
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def number(text):
    """The leading number of a $SYS payload ('42', '0.53', '3600 seconds'), or None."""
    try:
        return float(text.split()[0])
    except (IndexError, ValueError):
        return None


class PlatformStats:
    """The latest report of each worker and the broker's figures; safe across threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ingest = {}   # worker -> its latest stats (a dict), with "rate" added
        self.modbus = {}   # worker -> its latest stats
        self.broker = {}   # SYS_FIGURES name -> number
        self.broker_version = None

    def handle(self, topic, payload):
        """Take one message of STATS_TOPIC or SYS_TOPIC; False if it is not one we keep."""
        if topic.startswith(SYS_PREFIX):
            return self.handle_sys(topic[len(SYS_PREFIX):], payload)
        kind, _, worker = topic[len(STATS_PREFIX):].partition("/")
        if kind not in ("ingest", "modbus") or not worker or "/" in worker:
            return False
        with self.lock:
            reports = self.ingest if kind == "ingest" else self.modbus
            if not payload:  # the retained report was removed: the worker is gone
                return reports.pop(worker, None) is not None
            try:
                stats = json.loads(payload)
            except (UnicodeDecodeError, ValueError):
                return False
            if not isinstance(stats, dict) or (worker not in reports
                                               and len(reports) >= MAX_WORKERS):
                return False
            if kind == "ingest":
                stats["rate"] = self.stored_per_second(self.ingest.get(worker), stats)
            reports[worker] = stats
        return True

    def stored_per_second(self, before, now):
        """Readings stored per second between a worker's two reports, or None (its first,
        or after a restart: the counters began again)."""
        if not before or before.get("since") != now.get("since"):
            return None
        start, end = timestamp(before.get("at")), timestamp(now.get("at"))
        try:
            grown = float(now["stored"]) - float(before["stored"])
        except (KeyError, TypeError, ValueError):
            return None
        if start is None or end is None or end <= start or grown < 0:
            return None
        return grown / (end - start)

    def handle_sys(self, name, payload):
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        with self.lock:
            if name == "version":
                self.broker_version = text.strip()
                return True
            if name not in SYS_FIGURES or number(text) is None:
                return False
            self.broker[SYS_FIGURES[name]] = number(text)
        return True

    def snapshot(self):
        """{"ingest": {worker: stats}, "modbus": {worker: stats}, "broker": {...}}, copies."""
        with self.lock:
            return {"ingest": {w: dict(s) for w, s in sorted(self.ingest.items())},
                    "modbus": {w: dict(s) for w, s in sorted(self.modbus.items())},
                    "broker": dict(self.broker), "broker_version": self.broker_version}


def of(app):
    """The app's PlatformStats (made on first use)."""
    return app.extensions.setdefault(EXTENSION, PlatformStats())
