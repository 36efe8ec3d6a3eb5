// What the chart pages share: reading the REST API, and uPlot (static/vendor/uplot/, the
// global `uPlot`) set up for the portal's look, the browser's time zone and a resizable box.

export const RESOLUTION_LABEL = { raw: "raw", minute: "1 min", hour: "1 h" };
export const BUCKET_SECONDS = { minute: 60, hour: 3600 };

// Distinct on light and dark backgrounds; series take them in order.
const PALETTE = ["#2f6fde", "#d9480f", "#2b8a3e", "#ae3ec9", "#e8a400", "#0c8599", "#c2255c", "#5c7cfa"];
export function color(i) { return PALETTE[i % PALETTE.length]; }
export function translucent(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

// GET a JSON document from the API. Rejects with an Error whose message is what the page
// shows: the API's own {"error": …} for a 4xx, or what went wrong on the way.
export async function getJson(url) {
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  } catch (e) {
    throw new Error("The portal did not answer; check the connection and try again.");
  }
  const isJson = (response.headers.get("Content-Type") || "").startsWith("application/json");
  const body = isJson ? await response.json().catch(() => null) : null;
  if (response.redirected && new URL(response.url).pathname === "/login") {
    throw new Error("Your session has ended: reload the page to log in again.");
  }
  if (!response.ok) {
    throw new Error(body && body.error ? body.error : `The portal answered ${response.status} ${response.statusText}.`);
  }
  if (!body) throw new Error("The portal's answer was not JSON.");
  return body;
}

export function apiUrl(base, params) {
  const url = new URL(base, window.location.origin);
  Object.entries(params).forEach(([key, value]) => url.searchParams.set(key, value));
  return url.pathname + url.search;
}

// Times on the x axis and in the legend: the browser's locale and zone (uPlot's own
// formats are English 12-hour). Formatters are made once: making one per call is slow.
const FORMATS = {
  seconds: new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" }),
  minutes: new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" }),
  dayAndMinutes: new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }),
  day: new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" }),
  full: new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric",
                                             hour: "2-digit", minute: "2-digit", second: "2-digit" }),
};

export function formatTime(ms) { return FORMATS.full.format(ms); }
export function formatMinute(ms) { return FORMATS.dayAndMinutes.format(ms); }

// A tick shows the time of day, and the date too where the day changes (on a second line).
function tickLabels(u, splits, axisIdx, space, step) {
  if (step >= 86400) return splits.map((s) => FORMATS.day.format(s * 1000));
  const time = step < 60 ? FORMATS.seconds : FORMATS.minutes;
  let previousDay = "";
  return splits.map((s) => {
    const day = FORMATS.day.format(s * 1000);
    const label = day === previousDay ? time.format(s * 1000) : `${time.format(s * 1000)}\n${day}`;
    previousDay = day;
    return label;
  });
}

export function formatNumber(v) {
  return v === null || v === undefined ? "–" : String(Number(v.toPrecision(6)));
}

// A uPlot time chart in `box` that follows the box's width and shows a given time window;
// a zoom (drag across the chart) holds until a double-click, even while live data comes in.
// `series` and `bands` as uPlot takes them, after the x series; `units`: one y scale each.
export class TimeChart {
  constructor(box, { series, bands = [], units = [""] }) {
    const style = getComputedStyle(document.documentElement);
    const ink = style.getPropertyValue("--muted").trim() || "#687386";
    const grid = style.getPropertyValue("--line").trim() || "#dde1e8";
    // one y axis per unit, left then right; units beyond two share the chart without one
    const axes = [{ stroke: ink, grid: { stroke: grid }, ticks: { stroke: grid }, values: tickLabels, space: 60, size: 56 }];
    units.slice(0, 2).forEach((unit, i) => axes.push({
      scale: unit, side: i === 0 ? 3 : 1, stroke: ink, label: unit || undefined, size: 60,
      grid: { show: i === 0, stroke: grid }, ticks: { stroke: grid },
    }));
    const scales = { x: { time: true } };
    units.forEach((unit) => { scales[unit] = { auto: true }; });
    this.zoomed = false;
    this.applying = false;  // our own scale changes are not a zoom
    this.window = null;
    const options = {
      width: Math.max(box.clientWidth, 300),
      height: 380,
      scales: scales,
      axes: axes,
      series: [{ label: "time", value: (u, v) => (v === null ? "–" : formatTime(v * 1000)) }, ...series],
      bands: bands,
      cursor: {
        drag: { x: true, y: false },
        bind: { dblclick: () => () => { this.resetZoom(); return null; } },
      },
      hooks: { setScale: [(u, key) => { if (key === "x" && !this.applying) this.zoomed = true; }] },
    };
    this.plot = new uPlot(options, [[]].concat(series.map(() => [])), box);
    this.resizer = new ResizeObserver(() => {
      const width = Math.max(box.clientWidth, 300);
      if (width !== this.plot.width) this.plot.setSize({ width: width, height: this.plot.height });
    });
    this.resizer.observe(box);
  }

  // data: uPlot's [xs, ...ys] (seconds); window: [from, to] in seconds.
  show(data, window) {
    this.window = window;
    this.applying = true;
    this.plot.batch(() => {
      this.plot.setData(data, !this.zoomed);
      if (!this.zoomed) this.plot.setScale("x", { min: window[0], max: window[1] });
    });
    this.applying = false;
  }

  resetZoom() {
    this.zoomed = false;
    if (this.window) this.show(this.plot.data, this.window);
  }

  destroy() {
    this.resizer.disconnect();
    this.plot.destroy();
  }
}

// A gap in the data breaks the line (a null) instead of a straight line across an outage:
// a gap is a spacing over three times the usual one (the median), and at least three
// buckets at minute or hour resolution, so a sensor that reports every 5 minutes still has
// a line at 1-minute resolution.
export function breakAtGaps(table, stepSeconds = 0) {
  const [xs, ...columns] = table;
  if (xs.length < 3) return table;
  const spacings = [];
  for (let i = 1; i < xs.length; i++) spacings.push(xs[i] - xs[i - 1]);
  spacings.sort((a, b) => a - b);
  const gap = 3 * Math.max(stepSeconds, spacings[spacings.length >> 1]);
  const out = [[], ...columns.map(() => [])];
  for (let i = 0; i < xs.length; i++) {
    if (i > 0 && xs[i] - xs[i - 1] > gap) {
      out[0].push((xs[i - 1] + xs[i]) / 2);
      columns.forEach((_, c) => out[c + 1].push(null));
    }
    out[0].push(xs[i]);
    columns.forEach((column, c) => out[c + 1].push(column[i]));
  }
  return out;
}
