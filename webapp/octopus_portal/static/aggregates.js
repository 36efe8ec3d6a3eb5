// The Aggregates page: per-minute mean, max, min (and the devices that had them) and count
// over a set of devices, from GET /api/v1/aggregates; a chart of the mean in its min/max
// band, and a table.
import { RangePicker, isoUtc, zoneName } from "./timerange.js";
import { RESOLUTION_LABEL, TimeChart, apiUrl, breakAtGaps, color, formatMinute,
         formatNumber, getJson, translucent } from "./chartkit.js";
import { matches } from "./topics.js";

// A day of minutes. A longer range is in the chart and the CSV; a table that long helps nobody
// and takes the browser seconds to lay out.
const TABLE_ROWS = 1440;

const page = document.getElementById("aggregates");
const $ = (testid) => page.querySelector(`[data-testid="${testid}"]`);
const form = page.querySelector("form.chart-controls");
const el = {
  devices: form.elements.devices, attribute: form.elements.attribute,
  resolution: $("resolution"), summary: $("chart-summary"), download: $("download-csv"),
  error: $("chart-error"), box: $("aggregates-chart"), table: $("aggregates-table"),
  tableNote: $("table-note"),
};
const attributes = [];  // {topic, unit, attribute}, from /api/v1/attributes
let chart = null;
let generation = 0;     // each load counts up; answers of an older load are dropped
const picker = new RangePicker($("range"), () => reload());

function showErrors(messages) {
  el.error.textContent = messages.join(" ");
  el.error.hidden = messages.length === 0;
}

// The devices filter as the API reads it (up to site/room/device; a missing level is any),
// extended by the attribute to a topic filter.
function topicFilter(devices, attribute) {
  const levels = devices.split("/");
  if (levels[levels.length - 1] === "#") levels.pop();
  while (levels.length < 3) levels.push("+");
  return `${levels.join("/")}/${attribute}`;
}

async function loadChoices() {
  try {
    const answer = await getJson(apiUrl(page.dataset.attributesUrl, { pattern: "#" }));
    const filters = new Set(), names = new Set();
    answer.attributes.forEach((a) => {
      attributes.push({ topic: `${a.site}/${a.room}/${a.device}/${a.attribute}`, unit: a.unit || "" });
      filters.add(a.site).add(`${a.site}/${a.room}`);
      names.add(a.attribute);
    });
    fillList("device-filters", [...filters].sort());
    fillList("attribute-names", [...names].sort());
    return [];
  } catch (e) {
    return [`The lists of devices and attributes could not be loaded: ${e.message}`];
  }
}

function fillList(id, values) {
  const list = document.getElementById(id);
  values.forEach((value) => { const option = document.createElement("option"); option.value = value; list.appendChild(option); });
}

function remember() {
  const params = new URLSearchParams();
  if (el.devices.value.trim()) params.set("devices", el.devices.value.trim());
  if (el.attribute.value.trim()) params.set("attribute", el.attribute.value.trim());
  picker.writeParams(params);
  history.replaceState(null, "", `${location.pathname}?${params}`);
}

async function reload(problems = []) {
  remember();
  showErrors(problems);
  const devices = el.devices.value.trim(), attribute = el.attribute.value.trim();
  if (!devices || !attribute) {
    el.summary.textContent = "Choose devices and an attribute.";
    return;
  }
  const range = picker.current();
  if (range.error) { showErrors([...problems, range.error]); return; }
  const mine = ++generation;
  el.box.setAttribute("aria-busy", "true");
  let answer;
  try {
    answer = await getJson(apiUrl(page.dataset.aggregatesUrl, {
      devices: devices, attribute: attribute, from: isoUtc(range.from), to: isoUtc(range.to) }));
  } catch (e) {
    if (mine !== generation) return;
    el.box.removeAttribute("aria-busy");
    showErrors([...problems, e.message]);
    return;
  }
  if (mine !== generation) return;
  el.box.removeAttribute("aria-busy");
  const units = new Set(attributes.filter((a) => matches(topicFilter(devices, attribute), a.topic)).map((a) => a.unit));
  const unit = units.size === 1 ? [...units][0] : "";
  drawChart(answer.minutes, unit, range);
  fillTable(answer.minutes, unit);
}

function drawChart(minutes, unit, range) {
  if (chart) chart.destroy();
  const stroke = color(0);
  const value = (u, v) => (v === null || v === undefined ? "–" : `${formatNumber(v)} ${unit}`.trim());
  const edge = { stroke: translucent(stroke, 0.45), width: 1, scale: unit, value: value };
  chart = new TimeChart(el.box, {
    units: [unit],
    series: [{ label: "mean", stroke: stroke, width: 2, scale: unit, value: value },
             { ...edge, label: "min" }, { ...edge, label: "max" }],
    bands: [{ series: [3, 2], fill: translucent(stroke, 0.15) }],
  });
  const table = [[], [], [], []];
  minutes.forEach((m) => {
    table[0].push(Date.parse(m.minute) / 1000);
    table[1].push(m.mean); table[2].push(m.min); table[3].push(m.max);
  });
  chart.show(breakAtGaps(table, 60), [range.from / 1000, range.to / 1000]);
  const readings = minutes.reduce((sum, m) => sum + m.n, 0);
  el.resolution.textContent = RESOLUTION_LABEL.minute;
  el.box.dataset.points = String(minutes.length);
  el.summary.textContent = minutes.length
    ? `${minutes.length} minute${minutes.length === 1 ? "" : "s"}, ${readings} reading${readings === 1 ? "" : "s"}`
    : "No numeric readings in this range.";
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function fillTable(minutes, unit) {
  const body = document.createElement("tbody");
  const newestFirst = minutes.slice(-TABLE_ROWS).reverse();
  newestFirst.forEach((m) => {
    const row = body.insertRow();
    row.dataset.testid = "aggregate-row";
    const time = document.createElement("time");
    time.dateTime = m.minute;
    time.textContent = formatMinute(Date.parse(m.minute));
    row.insertCell().appendChild(time);
    cell(row, formatNumber(m.mean), "num");
    cell(row, formatNumber(m.max), "num");
    cell(row, m.max_device || "", "device");
    cell(row, formatNumber(m.min), "num");
    cell(row, m.min_device || "", "device");
    cell(row, String(m.n), "num");
  });
  el.table.tBodies[0].replaceWith(body);
  el.table.hidden = minutes.length === 0;
  const headings = el.table.tHead.rows[0].cells;
  [[1, "Mean"], [2, "Max"], [4, "Min"]].forEach(([i, name]) => {
    headings[i].textContent = unit ? `${name} (${unit})` : name;
  });
  el.tableNote.textContent = minutes.length > TABLE_ROWS
    ? `The table shows the latest ${TABLE_ROWS} of ${minutes.length} minutes; the chart and the CSV have them all.`
    : "";
}

form.addEventListener("submit", (event) => { event.preventDefault(); reload(); });

el.download.addEventListener("click", (event) => {
  // a preset ends now: the link is made at the click, for the range as it is then
  const range = picker.current();
  const devices = el.devices.value.trim(), attribute = el.attribute.value.trim();
  if (range.error || !devices || !attribute) {
    event.preventDefault();
    showErrors([range.error || "Choose devices and an attribute first."]);
    return;
  }
  el.download.href = apiUrl(page.dataset.exportUrl, {
    kind: "aggregate", devices: devices, attribute: attribute,
    from: isoUtc(range.from), to: isoUtc(range.to), tz: zoneName });
});

$("time-zone").textContent = zoneName;
const params = new URLSearchParams(location.search);
el.devices.value = params.get("devices") || "";
el.attribute.value = params.get("attribute") || "";
picker.readParams(params);
loadChoices().then((problems) => reload(problems));
