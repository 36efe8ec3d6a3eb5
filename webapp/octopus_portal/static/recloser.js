// The recloser view (templates/recloser.html): each cell whose data-attribute names one of the
// device's attributes shows that attribute's newest stored value, as octopus/live brings it.
import { followLiveReadings } from "./livefeed.js";

const page = document.getElementById("recloser");
const prefix = `${page.dataset.key}/`;
const cells = new Map();
page.querySelectorAll("[data-attribute]").forEach((el) => cells.set(el.dataset.attribute, el));
const liveState = page.querySelector("[data-testid=live-state]");
const LABELS = { live: "live", offline: "reconnecting…", refused: "logged out: reload" };

function show(reading, topic) {
  if (!topic.startsWith(prefix)) return;
  const cell = cells.get(topic.slice(prefix.length));
  if (!cell) return;
  cell.querySelector(".value").textContent = String(reading.value);
  const unit = cell.querySelector(".unit");
  if (unit && reading.unit) unit.textContent = reading.unit;
  if (cell.dataset.state !== undefined) cell.dataset.state = String(reading.value);
  cell.title = `at ${reading.ts}`;
}

followLiveReadings(show, (state, reconnected) => {
  liveState.dataset.state = state;
  liveState.textContent = LABELS[state];
  if (reconnected) location.reload();  // readings sent while away were missed
});
