// Time ranges of the chart pages: a preset that ends now (1 h … 30 d), or a custom range
// typed in the browser's time zone. The API gets ISO 8601 instants in UTC ("…Z"), so the
// browser's zone only matters for what people type and read.

export const zoneName = Intl.DateTimeFormat().resolvedOptions().timeZone;

export function isoUtc(ms) {
  return new Date(ms).toISOString();
}

// A datetime-local value ("2026-11-22T12:00") has no zone; Date reads that form as local time.
function fromLocalInput(value) {
  const ms = value ? new Date(value).getTime() : NaN;
  return isNaN(ms) ? null : ms;
}

function toLocalInput(ms) {
  const shifted = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return shifted.toISOString().slice(0, 16);
}

// The range controls of templates/_charts.html: preset buttons (data-range, data-ms) and
// two datetime-local inputs with a Show button. `onChange()` is called on every change.
export class RangePicker {
  constructor(fieldset, onChange) {
    this.buttons = fieldset.querySelectorAll("button[data-ms]");
    this.presets = new Map();  // name -> milliseconds, in the order shown
    this.buttons.forEach((button) => {
      this.presets.set(button.dataset.range, Number(button.dataset.ms));
      button.addEventListener("click", () => { this.choosePreset(button.dataset.range); onChange(); });
    });
    this.fromInput = fieldset.querySelector("input[name=from]");
    this.toInput = fieldset.querySelector("input[name=to]");
    fieldset.querySelector("button[data-range=custom]").addEventListener("click", () => {
      this.custom = { from: fromLocalInput(this.fromInput.value), to: fromLocalInput(this.toInput.value) };
      this.preset = null;
      this.markPressed();
      onChange();
    });
    this.choosePreset(this.presets.keys().next().value);
  }

  choosePreset(name) {
    this.preset = this.presets.has(name) ? name : this.presets.keys().next().value;
    this.custom = null;
    this.markPressed();
  }

  markPressed() {
    this.buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.range === this.preset)));
  }

  // {from, to} in ms, `live` when the range ends now, or {error} for a custom range that
  // cannot be shown. A preset is computed at each call: it always ends now.
  current() {
    if (this.preset) {
      const to = Date.now();
      const span = this.presets.get(this.preset);
      this.showInInputs(to - span, to);
      return { from: to - span, to: to, span: span, live: true };
    }
    const { from, to } = this.custom;
    if (from === null || to === null) return { error: "Enter both the start and the end of the range." };
    if (from >= to) return { error: "The start of the range must be before its end." };
    return { from: from, to: to, span: to - from, live: false };
  }

  showInInputs(from, to) {
    // the inputs show what a preset covers, as the starting point for a custom range
    this.fromInput.value = toLocalInput(from);
    this.toInput.value = toLocalInput(to);
  }

  // The page URL carries the range: ?range=24h, or ?from=…&to=… (ISO) for a custom one.
  readParams(params) {
    const from = Date.parse(params.get("from") || "");
    const to = Date.parse(params.get("to") || "");
    if (!isNaN(from) && !isNaN(to)) {
      this.preset = null;
      this.custom = { from: from, to: to };
      this.showInInputs(from, to);
      this.markPressed();
    } else if (params.has("range")) {
      this.choosePreset(params.get("range"));
    }
  }

  writeParams(params) {
    params.delete("range"); params.delete("from"); params.delete("to");
    if (this.preset) params.set("range", this.preset);
    else if (this.custom && this.custom.from !== null && this.custom.to !== null) {
      params.set("from", isoUtc(this.custom.from));
      params.set("to", isoUtc(this.custom.to));
    }
  }
}
