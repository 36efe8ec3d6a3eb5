"""The System page: the figures of /metrics for people (every logged-in role), with the
health of each part and why it is down, refreshed every few seconds by static/system.js."""
import time
from datetime import datetime, timezone

from flask import Blueprint, current_app, render_template

from . import figures
from .platform_stats import timestamp

bp = Blueprint("system", __name__)
REFRESH_S = 5  # the workers report every 10 s and Mosquitto every 10 s: 5 s shows each soon
# Three reports missed (every 10 s, octopus-ingest.js): the worker stopped, crashed or lost
# the broker, and its last report, retained, would otherwise go on saying "connected".
SILENT_AFTER_S = 30


@bp.app_template_filter("epoch_iso")
def epoch_iso(seconds):
    """Seconds since the epoch as ISO 8601 UTC (shown in the browser's zone by portal.js)."""
    if seconds is None:
        return None
    when = datetime.fromtimestamp(seconds, timezone.utc)
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


@bp.app_template_filter("mean_ms")
def mean_ms(histogram):
    """The mean of a worker's batch write times in ms, or None before its first batch."""
    if not isinstance(histogram, dict) or not histogram.get("count"):
        return None
    return 1000 * histogram["sum"] / histogram["count"]


def silent(report, now):
    """True if a worker's report is older than SILENT_AFTER_S (False if it has no time)."""
    made = timestamp(report.get("at"))
    return made is not None and now - made > SILENT_AFTER_S


def page_figures():
    found = figures.collect(current_app._get_current_object())
    now = time.time()
    for report in found["ingest"].values():
        report["silent"] = silent(report, now)
    # a silent worker's last rate is history, not what is stored now
    found["ingest_rate"] = sum(w.get("rate") or 0 for w in found["ingest"].values()
                               if not w["silent"])
    found["silent_after_s"] = SILENT_AFTER_S
    return found


@bp.get("/system")
def index():
    """The page, drawn with the figures of now."""
    return render_template("system.html", f=page_figures(), refresh_s=REFRESH_S)


@bp.get("/system/figures")
def figures_fragment():
    """The figures part of the page alone, which the page fetches again and again."""
    return render_template("_system_figures.html", f=page_figures())
