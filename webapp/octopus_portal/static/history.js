// The History page: chosen attributes over one range on one chart, from GET /api/v1/history
// (one request per attribute; the API picks raw, per-minute or per-hour points), with the
// live tail appended from the `live` Socket.IO event while the range ends now.
import { RangePicker, isoUtc, zoneName } from "./timerange.js";
import { BUCKET_SECONDS, RESOLUTION_LABEL, TimeChart, apiUrl, breakAtGaps, color,
         formatNumber, getJson, translucent } from "./chartkit.js";
import { followLiveReadings } from "./livefeed.js";
import { exportPattern } from "./topics.js";

const page = document.getElementById("history");
const $ = (testid) => page.querySelector(`[data-testid="${testid}"]`);
const el = {
  form: page.querySelector("form.chart-controls"), input: $("attribute-input"),
  options: document.getElementById("attribute-options"), chips: $("selected-topics"),
  chip: document.getElementById("template-topic"), resolution: $("resolution"),
  download: $("download-csv"), exportScope: $("export-scope"), error: $("chart-error"),
  notes: $("chart-notes"), box: $("history-chart"), summary: $("chart-summary"), live: $("live-state"),
};

const selected = [];        // topics, in the order chosen
const known = new Set();    // every topic there is, from /api/v1/attributes
let shown = new Map();      // topic -> TopicSeries on the chart
let win = null;             // the range shown: {from, to, span, live} in ms
let chart = null;
let generation = 0;         // each load counts up; answers of an older load are dropped
const picker = new RangePicker($("range"), reload);

// One attribute's points as uPlot columns (seconds), and the live readings appended to them.
class TopicSeries {
  constructor(answer) {
    this.topic = answer.topic;
    this.unit = answer.unit || "";
    this.resolution = answer.resolution;
    this.step = BUCKET_SECONDS[answer.resolution] || 0;
    // A live reading older than this may already be in the answer: it is not added again.
    this.loadedTo = Date.parse(answer.to) / 1000;
    this.xs = []; this.mean = []; this.min = []; this.max = []; this.n = [];
    this.textReadings = 0;
    answer.points.forEach((p) => {
      const x = Date.parse(p.ts) / 1000;
      if (this.step) this.pushBucket(x, p.mean, p.min, p.max, p.n);
      else if (typeof p.value === "number") this.pushBucket(x, p.value, p.value, p.value, 1);
      else this.textReadings += 1;  // a state string: listed in the CSV, not on a chart
    });
  }

  pushBucket(x, mean, min, max, n) {
    this.xs.push(x); this.mean.push(mean); this.min.push(min); this.max.push(max); this.n.push(n);
  }

  append(reading) {
    const x = Date.parse(reading.ts) / 1000;
    const v = reading.value;
    if (typeof v !== "number" || isNaN(x) || x < this.loadedTo) return false;
    const last = this.xs.length - 1;
    if (!this.step) {
      if (last >= 0 && x <= this.xs[last]) return false;  // a late reading: it is in the next load
      this.pushBucket(x, v, v, v, 1);
      return true;
    }
    // the bucket the reading falls in: UTC minutes or hours, as the API's buckets
    const bucket = Math.floor(x / this.step) * this.step;
    if (last >= 0 && bucket === this.xs[last]) {
      const n = this.n[last];
      this.mean[last] = (this.mean[last] * n + v) / (n + 1);
      this.min[last] = Math.min(this.min[last], v);
      this.max[last] = Math.max(this.max[last], v);
      this.n[last] = n + 1;
    } else if (last < 0 || bucket > this.xs[last]) {
      this.pushBucket(bucket, v, v, v, 1);
    } else {
      return false;
    }
    return true;
  }

  dropBefore(x) {
    let i = 0;
    while (i < this.xs.length && this.xs[i] + this.step < x) i++;
    if (i) [this.xs, this.mean, this.min, this.max, this.n].forEach((column) => column.splice(0, i));
  }

  table() {
    return this.step ? breakAtGaps([this.xs, this.mean, this.min, this.max], this.step)
                     : breakAtGaps([this.xs, this.mean]);
  }
}

// --- the selection ---------------------------------------------------------------------------
// Adds `topic` to the chart's selection; returns why not, or "".
function addTopic(topic) {
  topic = topic.trim();
  if (!topic || selected.includes(topic)) return "";
  if (known.size && !known.has(topic)) {
    return `There is no attribute ${topic}: pick one from the list (site/room/device/attribute).`;
  }
  selected.push(topic);
  const chip = el.chip.content.firstElementChild.cloneNode(true);
  chip.dataset.topic = topic;
  chip.querySelector(".topic").textContent = topic;
  chip.querySelector("button").addEventListener("click", () => {
    selected.splice(selected.indexOf(topic), 1);
    chip.remove();
    reload();
  });
  el.chips.appendChild(chip);
  describeExport();
  return "";
}

el.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const problem = addTopic(el.input.value);
  if (problem) { showErrors([problem]); return; }
  el.input.value = "";
  reload();
});

// Fills the attribute list to pick from; returns what went wrong, if anything.
async function loadAttributeList() {
  try {
    const answer = await getJson(apiUrl(page.dataset.attributesUrl, { pattern: "#" }));
    answer.attributes.forEach((a) => {
      const topic = `${a.site}/${a.room}/${a.device}/${a.attribute}`;
      known.add(topic);
      const option = document.createElement("option");
      option.value = topic;
      if (a.unit) option.label = `${topic} (${a.unit})`;
      el.options.appendChild(option);
    });
    return [];
  } catch (e) {
    return [`The list of attributes could not be loaded: ${e.message}`];
  }
}

// --- loading and drawing ---------------------------------------------------------------------
function showErrors(messages) {
  el.error.textContent = messages.join(" ");
  el.error.hidden = messages.length === 0;
}

function remember() {
  // the page's address names what it shows, so that it can be bookmarked or sent
  const params = new URLSearchParams();
  selected.forEach((topic) => params.append("topic", topic));
  picker.writeParams(params);
  history.replaceState(null, "", `${location.pathname}?${params}`);
}

// Load the chart again for the selection and range; `problems` are shown with the API's.
async function reload(problems = []) {
  const range = picker.current();
  remember();
  describeExport();
  showErrors(problems);
  if (range.error) { showErrors([...problems, range.error]); return; }
  win = range;
  const mine = ++generation;
  const topics = selected.slice();
  el.box.setAttribute("aria-busy", "true");
  const answers = await Promise.allSettled(topics.map((topic) => getJson(apiUrl(
    page.dataset.historyUrl, { topic: topic, from: isoUtc(range.from), to: isoUtc(range.to) }))));
  if (mine !== generation) return;
  el.box.removeAttribute("aria-busy");
  const errors = problems.slice();
  shown = new Map();
  answers.forEach((answer, i) => {
    if (answer.status === "fulfilled") shown.set(topics[i], new TopicSeries(answer.value));
    else errors.push(`${topics[i]}: ${answer.reason.message}`);
  });
  showErrors(errors);
  const first = shown.values().next().value;
  el.resolution.textContent = first ? RESOLUTION_LABEL[first.resolution] || first.resolution : "–";
  buildChart();
  updateLiveState();
}

function buildChart() {
  if (chart) { chart.destroy(); chart = null; }
  const units = [...new Set([...shown.values()].map((s) => s.unit))];
  const series = [], bands = [];
  [...shown.values()].forEach((s, i) => {
    const stroke = color(i);
    const value = (u, v) => (v === null || v === undefined ? "–" : `${formatNumber(v)} ${s.unit}`.trim());
    series.push({ label: s.topic, stroke: stroke, width: 2, scale: s.unit, value: value });
    if (s.step) {
      // min and max of each bucket: thin edges of a translucent band around the mean
      const edge = { stroke: translucent(stroke, 0.45), width: 1, scale: s.unit, value: value };
      series.push({ ...edge, label: "min" }, { ...edge, label: "max" });
      bands.push({ series: [series.length, series.length - 1], fill: translucent(stroke, 0.15) });
    }
  });
  if (series.length) chart = new TimeChart(el.box, { series: series, bands: bands, units: units });
  draw();
}

function draw() {
  const all = [...shown.values()];
  const points = all.reduce((sum, s) => sum + s.xs.length, 0);
  el.box.dataset.series = String(all.length);
  el.box.dataset.points = String(points);
  el.summary.textContent = all.length
    ? `${all.length} attribute${all.length === 1 ? "" : "s"}, ${points} point${points === 1 ? "" : "s"}`
    : selected.length ? "" : "Pick an attribute to chart it.";
  el.notes.textContent = all.filter((s) => s.textReadings).map((s) =>
    `${s.topic}: ${s.textReadings} text reading${s.textReadings === 1 ? "" : "s"} not charted (they are in the CSV).`).join(" ");
  if (all.length && points === 0) el.summary.textContent += ": no readings in this range.";
  if (chart) {
    chart.show(uPlot.join(all.map((s) => s.table())), [win.from / 1000, win.to / 1000]);
  }
}

// --- the live tail ---------------------------------------------------------------------------
let drawPending = false;
function drawSoon() {
  // at most one redraw per 250 ms, whatever the rate of readings
  if (drawPending) return;
  drawPending = true;
  setTimeout(() => requestAnimationFrame(() => {
    drawPending = false;
    if (!win || !win.live) return;
    win.to = Date.now();
    win.from = win.to - win.span;
    shown.forEach((s) => s.dropBefore(win.from / 1000));
    draw();
  }), 250);
}

let socketState = "connecting";
function updateLiveState() {
  const following = win && win.live;
  el.live.dataset.state = following ? socketState : "off";
  el.live.textContent = !following ? "not live: the range does not end now"
    : socketState === "live" ? "live" : socketState === "refused" ? "logged out: reload the page" : "reconnecting…";
}

followLiveReadings((reading, topic) => {
  const series = win && win.live ? shown.get(topic) : null;
  if (series && series.append(reading)) drawSoon();
}, (state, reconnected) => {
  socketState = state;
  updateLiveState();
  if (reconnected && win && win.live) reload();  // fill in what was missed while disconnected
});
// the window slides with the clock even when no reading comes
setInterval(() => { if (win && win.live) drawSoon(); }, 30_000);

// --- the download ------------------------------------------------------------------------------
el.download.addEventListener("click", (event) => {
  // a preset ends now: the link is made at the click, for the range as it is then
  const range = picker.current();
  if (range.error || !selected.length) {
    event.preventDefault();
    showErrors([range.error || "Pick an attribute first."]);
    return;
  }
  el.download.href = apiUrl(page.dataset.exportUrl, {
    kind: "raw", pattern: exportPattern(selected, known).pattern,
    from: isoUtc(range.from), to: isoUtc(range.to), tz: zoneName });
});

function describeExport() {
  // one export takes one topic filter: say so when it covers more than the chart
  const { pattern, exact } = exportPattern(selected, known);
  el.exportScope.textContent = exact ? "" : `every attribute matching ${pattern}`;
  el.download.setAttribute("aria-disabled", String(!selected.length));
}

// --- start -----------------------------------------------------------------------------------
$("time-zone").textContent = zoneName;
const params = new URLSearchParams(location.search);
picker.readParams(params);
loadAttributeList().then((problems) => {
  reload([...problems, ...params.getAll("topic").map(addTopic).filter(Boolean)]);
});
