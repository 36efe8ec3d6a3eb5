"""Acceptance 4 (issue 4): a real headless Chromium opens a history chart, switches ranges
and downloads a CSV; and the Aggregates page shows and exports the per-minute aggregates.

Everything runs on the whole platform (`platform`): readings are published over MQTT, stored
by the Node-RED ingest, read back by the pages through the REST API, and the live tail
comes through octopus/live. The browser runs in Asia/Tokyo (UTC+09:00) so that a time
shown or typed in UTC by mistake cannot pass. The chart is kept in
tests/artifacts/history-chart.png."""
import csv
import io
import json
import math
import uuid
from datetime import datetime, timedelta, timezone
from statistics import fmean
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.integration.conftest import wait_for

ZONE = "Asia/Tokyo"
# The first two colours of static/chartkit.js: the first and second attribute on a chart.
SERIES_COLOURS = ["#2f6fde", "#d9480f"]

# How many pixels of each colour the chart's canvas holds (a drawn line is hundreds).
COUNT_COLOURS = """([selector, colours]) => {
  const canvas = document.querySelector(selector + " canvas");
  const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  return colours.map((hex) => {
    const n = parseInt(hex.slice(1), 16), rgb = [n >> 16, (n >> 8) & 255, n & 255];
    let count = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] > 200 && rgb.every((c, k) => Math.abs(data[i + k] - c) < 24)) count++;
    }
    return count;
  });
}"""


def iso(ts):
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Seed:
    """Two sensors of a room of our own: ten minutes three days ago (three readings a
    minute), and two readings 20 s apart every five minutes over the last two days (a daily
    wave, so the chart has something to show and min and max differ). No reading is within
    two minutes of an hour boundary counted back from now, so a page opened a few seconds
    later sees the same readings in its last hour."""

    def __init__(self, now):
        self.now = now
        self.site = f"hist{uuid.uuid4().hex[:6]}"
        self.room = "sala"
        self.old_start = (now - timedelta(days=3)).replace(second=0, microsecond=0)
        self.readings = []  # (device, ts, value)
        for minute in range(10):
            for second in (0, 20, 40):
                ts = self.old_start + timedelta(minutes=minute, seconds=second)
                self.readings.append(("sensor1", ts, 10 + minute + second / 100))
                self.readings.append(("sensor2", ts, 30 - minute - second / 100))
        start = now.replace(microsecond=0) - timedelta(seconds=150)
        for step in range(2 * 24 * 12):
            for second in (0, 20):
                ts = start - timedelta(minutes=5 * step) + timedelta(seconds=second)
                phase = 2 * math.pi * ts.timestamp() / 86400
                self.readings.append(("sensor1", ts, round(21 + 3 * math.sin(phase) + second / 50, 2)))
                self.readings.append(("sensor2", ts, round(24 + 2 * math.cos(phase) - second / 40, 2)))

    def in_last_hour(self, device):
        return sum(1 for d, ts, _ in self.readings if d == device and ts > self.now - timedelta(hours=1))

    def topic(self, device):
        return f"{self.site}/{self.room}/{device}/temperatura"

    def messages(self):
        return [(self.topic(device), json.dumps({"value": value, "ts": iso(ts), "unit": "°C"}))
                for device, ts, value in self.readings]


def stored(platform, site):
    """(device, ts, value) of every stored temperatura reading of `site`."""
    return {(device, ts, value) for device, ts, value in platform.query(
        "SELECT d.name, m.ts, m.num FROM measurements m JOIN attributes a ON a.id = m.attribute_id"
        " JOIN devices d ON d.id = a.device_id WHERE d.site = %s AND a.name = 'temperatura'",
        (site,))}


def minutes_of(readings, device=None):
    return {ts.replace(second=0, microsecond=0) for d, ts, _ in readings if device in (None, d)}


def csv_rows(download):
    with open(download.path(), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def local_input(ts):
    """What a person in ZONE types into a datetime-local input for `ts`."""
    return ts.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def page(platform, browser):
    """A logged-in page in ZONE; fails the test on any script error or unexpected console
    error (`page.expected_errors` holds the substrings a test expects)."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, timezone_id=ZONE,
                                  locale="en-GB", accept_downloads=True)
    page = context.new_page()
    errors = []
    page.expected_errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(platform.portal_url + "/login")
    page.fill("input[name=username]", platform.config["PORTAL_ADMIN_USER"])
    page.fill("input[name=password]", platform.config["PORTAL_ADMIN_PASSWORD"])
    page.click("button[type=submit]")
    expect(page.get_by_test_id("nav-history")).to_be_visible()
    yield page
    context.close()
    unexpected = [e for e in errors if not any(x in e for x in page.expected_errors)]
    assert unexpected == []


@pytest.fixture
def seed(platform):
    seed = Seed(datetime.now(timezone.utc))
    platform.publish(seed.messages())
    wait_for(lambda: len(stored(platform, seed.site)) == len(seed.readings), 30,
             what="the seeded readings in PostgreSQL")
    platform.query("SELECT run_maintenance(0, 0)")  # roll the finished minutes up now
    return seed


@pytest.mark.browser
def test_history_chart_switches_ranges_follows_live_and_downloads_csv(platform, page, seed,
                                                                      artifacts_dir):
    sensor1, sensor2 = seed.topic("sensor1"), seed.topic("sensor2")
    chart = page.get_by_test_id("history-chart")
    resolution = page.get_by_test_id("resolution")

    # from the device tree, an attribute's name opens its history over the last hour
    page.goto(platform.portal_url + "/")
    # an attribute that appears while the page is open gets its link too
    expect(page.get_by_test_id("live-state")).to_have_text("live", timeout=10_000)
    newcomer = f"{seed.site}/{seed.room}/sensor3/humedad"
    platform.publish([(newcomer, "55")])
    expect(page.locator(f'[data-key="{newcomer}"] [data-testid=attribute-history]')) \
        .to_have_attribute("href", "/history?topic=" + newcomer.replace("/", "%2F"), timeout=15_000)
    page.locator(f'[data-key="{sensor1}"] [data-testid=attribute-history]').click()
    expect(page.get_by_test_id("selected-topic")).to_have_text([f"{sensor1} ×"])
    expect(page.get_by_test_id("range-1h")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("time-zone")).to_have_text(ZONE)
    expect(resolution).to_have_text("raw")
    last_hour = seed.in_last_hour("sensor1"), seed.in_last_hour("sensor2")
    assert last_hour == (24, 24)
    expect(chart).to_have_attribute("data-points", str(last_hour[0]))

    # a second attribute overlaid on the same chart
    page.get_by_test_id("attribute-input").fill(sensor2)
    page.get_by_test_id("attribute-add").click()
    expect(chart).to_have_attribute("data-series", "2")
    expect(chart).to_have_attribute("data-points", str(sum(last_hour)))
    expect(chart.locator(".u-legend .u-series .u-label")).to_have_text(["time", sensor1, sensor2])
    drawn = page.evaluate(COUNT_COLOURS, ["[data-testid=history-chart]", SERIES_COLOURS])
    assert all(count > 100 for count in drawn), drawn

    # the live tail: a reading published now is appended while the range ends now
    expect(page.get_by_test_id("live-state")).to_have_text("live", timeout=10_000)
    platform.publish([(sensor1, "21.75")])
    expect(chart).to_have_attribute("data-points", str(sum(last_hour) + 1), timeout=15_000)

    # 7 days: per-minute points with their min/max band; the old readings are in it
    page.get_by_test_id("range-7d").click()
    expect(resolution).to_have_text("1 min")
    readings = stored(platform, seed.site)
    assert len(readings) == len(seed.readings) + 1
    per_minute = len(minutes_of(readings, "sensor1")) + len(minutes_of(readings, "sensor2"))
    expect(chart).to_have_attribute("data-points", str(per_minute))
    expect(chart.locator(".u-legend .u-series .u-label")).to_have_text(
        ["time", sensor1, "min", "max", sensor2, "min", "max"])
    assert page.url.endswith("range=7d") and "topic=" in page.url  # the address names the view
    drawn = page.evaluate(COUNT_COLOURS, ["[data-testid=history-chart]", SERIES_COLOURS])
    assert all(count > 100 for count in drawn), drawn
    page.screenshot(path=str(artifacts_dir / "history-chart.png"), full_page=True)

    # the CSV of what the chart shows: every stored reading of both, in the browser's zone
    # (one filter, {site}/sala/+/temperatura, covers exactly these two: no warning)
    expect(page.get_by_test_id("export-scope")).to_have_text("")
    with page.expect_download() as download:
        page.get_by_test_id("download-csv").click()
    assert "tz=Asia%2FTokyo" in download.value.url and "kind=raw" in download.value.url
    rows = csv_rows(download.value)
    assert all(r["time"].endswith("+09:00") for r in rows)
    assert {(r["device"], datetime.fromisoformat(r["time"]), float(r["value"])) for r in rows} \
        == readings
    assert len(rows) == len(readings)
    assert {(r["site"], r["room"], r["attribute"], r["unit"]) for r in rows} == \
        {(seed.site, seed.room, "temperatura", "°C")}

    # 30 days: per hour
    page.get_by_test_id("range-30d").click()
    expect(resolution).to_have_text("1 h")

    # a custom range, typed in the browser's time zone: only the ten old minutes, raw
    page.get_by_test_id("range-from").fill(local_input(seed.old_start - timedelta(minutes=5)))
    page.get_by_test_id("range-to").fill(local_input(seed.old_start + timedelta(minutes=15)))
    page.get_by_test_id("range-custom").click()
    expect(resolution).to_have_text("raw")
    expect(chart).to_have_attribute("data-points", "60")
    expect(page.get_by_test_id("live-state")).to_have_text("not live: the range does not end now")
    with page.expect_download() as download:
        page.get_by_test_id("download-csv").click()
    assert len(csv_rows(download.value)) == 60

    # mistakes are shown in the page: an unknown attribute, and an error of the API itself
    page.get_by_test_id("attribute-input").fill(f"{seed.site}/sala/ghost/temperatura")
    page.get_by_test_id("attribute-add").click()
    expect(page.get_by_test_id("chart-error")).to_contain_text("There is no attribute")
    page.expected_errors.append("status of 400")  # the browser logs the refused request
    page.goto(f"{platform.portal_url}/history?topic={sensor1}&from=2000-01-01T00:00:00Z"
              f"&to={iso(datetime.now(timezone.utc))}")
    expect(page.get_by_test_id("chart-error")).to_contain_text("longer than")


@pytest.mark.browser
def test_aggregates_page_shows_and_exports_the_minutes(platform, page, seed):
    page.goto(platform.portal_url + "/aggregates")
    page.get_by_test_id("devices-input").fill(seed.site)
    page.get_by_test_id("aggregate-attribute-input").fill("temperatura")
    page.get_by_test_id("range-7d").click()
    page.get_by_test_id("aggregate-show").click()
    readings = stored(platform, seed.site)
    minutes = sorted(minutes_of(readings))
    rows = page.get_by_test_id("aggregate-row")
    expect(rows).to_have_count(len(minutes))
    expect(page.get_by_test_id("resolution")).to_have_text("1 min")
    drawn = page.evaluate(COUNT_COLOURS, ["[data-testid=aggregates-chart]", SERIES_COLOURS[:1]])
    assert drawn[0] > 100, drawn

    # the oldest minute, computed here from the published readings (newest first on the page)
    first = minutes[0]
    values = [(v, d) for d, ts, v in readings if ts.replace(second=0, microsecond=0) == first]
    high, low = max(values), min(values)
    oldest = rows.last.locator("td")
    expect(oldest).to_have_text([
        first.astimezone(ZoneInfo(ZONE)).strftime("%-d %b, %H:%M"),
        f"{fmean(v for v, _ in values):.6g}", f"{high[0]:.6g}", f"{seed.site}/sala/{high[1]}",
        f"{low[0]:.6g}", f"{seed.site}/sala/{low[1]}", str(len(values))])

    with page.expect_download() as download:
        page.get_by_test_id("download-csv").click()
    assert "kind=aggregate" in download.value.url and "tz=Asia%2FTokyo" in download.value.url
    exported = csv_rows(download.value)
    assert [datetime.fromisoformat(r["minute"]) for r in exported] == minutes
    row = exported[0]
    assert row["minute"].endswith("+09:00")
    assert (float(row["mean"]), float(row["max"]), float(row["min"]), int(row["count"])) == \
        (pytest.approx(fmean(v for v, _ in values)), high[0], low[0], len(values))
    assert (row["max_device"], row["min_device"]) == \
        (f"{seed.site}/sala/{high[1]}", f"{seed.site}/sala/{low[1]}")
