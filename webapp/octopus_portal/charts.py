"""The History and Aggregates pages: page shells only. Their data comes from the REST API
(/api/v1/attributes, history, aggregates, export.csv), fetched by static/history.js and
static/aggregates.js, so the pages show exactly what an API client gets."""
from flask import Blueprint, render_template

bp = Blueprint("charts", __name__)

# Where the pages' scripts find the REST API; given to them as data-* attributes so that a
# move of the API is one change here, not one in each script.
API_URLS = {
    "attributes": "/api/v1/attributes",
    "history": "/api/v1/history",
    "aggregates": "/api/v1/aggregates",
    "export": "/api/v1/export.csv",
}

# Range presets of both pages (label, milliseconds), in the order shown. The scripts read
# them from the buttons, so this is the one list.
RANGE_PRESETS = (("1h", "1 h", 3_600_000), ("24h", "24 h", 86_400_000),
                 ("7d", "7 d", 604_800_000), ("30d", "30 d", 2_592_000_000))


@bp.get("/history")
def history():
    """One or more attributes over time on one chart; ?topic=site/room/device/attribute
    (repeatable) preselects them, ?range=1h|24h|7d|30d or ?from=&to= picks the range."""
    return render_template("history.html", api=API_URLS, presets=RANGE_PRESETS)


@bp.get("/aggregates")
def aggregates():
    """Per-minute mean, min, max, count and the devices that had the min and the max, over
    a set of devices (?devices=, ?attribute=, as the API takes them)."""
    return render_template("aggregates.html", api=API_URLS, presets=RANGE_PRESETS)
