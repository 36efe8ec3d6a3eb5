// The alerts page, live: each alert state that static/alerts-badge.js passes on
// (`octopus:alert`, from the portal's Socket.IO `alert` event) inserts or updates that
// alert's row, in "needs attention" or, once cleared and acknowledged, in "recently
// closed"; after a lost connection both lists are redrawn from /alerts/snapshot.json.
// Rows are clones of <template id="template-alert">, filled with textContent only.
(function () {
  "use strict";
  const root = document.getElementById("alerts");
  if (!root) return;
  const template = document.getElementById("template-alert");
  const lists = { attention: root.querySelector("[data-list=attention]"),
                  closed: root.querySelector("[data-list=closed]") };
  const CLOSED_LIMIT = 100;  // as alerts.py shows
  const states = new Map();  // alert id -> the state its row shows

  // --- times in the browser's zone, as static/portal.js shows them -------------------------
  const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const dayAndTime = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  function showTime(el, iso) {
    const ms = Date.parse(iso || "");
    el.setAttribute("datetime", iso || "");
    if (isNaN(ms)) { el.textContent = ""; return; }
    const midnight = new Date();
    midnight.setHours(0, 0, 0, 0);
    const today = ms >= midnight.getTime() && ms < midnight.getTime() + 864e5;
    el.textContent = (today ? timeOfDay : dayAndTime).format(ms);
  }

  // --- one alert's state -------------------------------------------------------------------
  // Acknowledged and cleared only ever go from empty to set: a state that arrives late (two
  // publishers racing) never takes back what the page already shows.
  const ONCE_SET = ["acked_at", "acked_by", "cleared_at", "cleared_value"];
  function merged(old, next) {
    const out = Object.assign({}, next);
    if (old) ONCE_SET.forEach(function (key) { if (out[key] == null) out[key] = old[key]; });
    out.state = out.cleared_at ? "cleared" : out.acked_at ? "acknowledged" : "active";
    return out;
  }
  function isClosed(a) { return Boolean(a.cleared_at && a.acked_at); }

  function text(value) { return value == null ? "" : String(value); }

  function fill(row, a) {
    const field = function (name) { return row.querySelector("[data-field=" + name + "]"); };
    row.dataset.alertId = a.id;
    row.dataset.state = a.state;
    row.dataset.raisedAt = text(a.raised_at);
    field("severity").textContent = text(a.severity);
    field("severity").dataset.severity = text(a.severity);
    field("state").textContent = a.state;
    field("state").dataset.state = a.state;
    field("flapping").hidden = !a.flapping;
    field("link").href = root.dataset.alertsUrl + "/" + a.id;
    field("rule_name").textContent = text(a.rule_name);
    field("message").textContent = text(a.message);
    field("device").textContent = [a.site, a.room, a.device].map(text).join("/");
    field("attribute").textContent = text(a.attribute);
    showTime(field("raised_at"), a.raised_at);
    field("raised_value").textContent = text(a.raised_value);
    row.querySelector("[data-show=cleared]").hidden = !a.cleared_at;
    showTime(field("cleared_at"), a.cleared_at);
    field("cleared_value").textContent = text(a.cleared_value);
    row.querySelector("[data-show=acked]").hidden = !a.acked_at;
    field("acked_by").textContent = text(a.acked_by);
    showTime(field("acked_at"), a.acked_at);
    const ack = row.querySelector("[data-show=ackable]");  // only for those who may
    if (ack) {
      ack.hidden = Boolean(a.acked_at);
      ack.action = root.dataset.alertsUrl + "/" + a.id + "/ack";
    }
  }

  function newerFirst(a, b) {  // > 0 if a comes after b: raised earlier, or same time, lower id
    return (Date.parse(b.raised_at) - Date.parse(a.raised_at)) || (b.id - a.id);
  }

  function place(row, a) {
    const list = lists[isClosed(a) ? "closed" : "attention"];
    const before = Array.prototype.find.call(list.children, function (other) {
      const o = states.get(Number(other.dataset.alertId));
      return o && newerFirst(a, o) < 0;
    });
    list.insertBefore(row, before || null);
    while (lists.closed.children.length > CLOSED_LIMIT) {
      const last = lists.closed.lastElementChild;
      states.delete(Number(last.dataset.alertId));
      last.remove();
    }
  }

  function showEmptyNotes() {
    root.querySelector("[data-testid=attention-empty]").hidden = lists.attention.children.length > 0;
    root.querySelector("[data-testid=closed-empty]").hidden = lists.closed.children.length > 0;
  }

  function apply(alert) {
    const id = alert.id;
    if (!Number.isInteger(id) || typeof alert.raised_at !== "string") return;
    const a = merged(states.get(id), alert);
    let row = root.querySelector('tr[data-testid=alert][data-alert-id="' + id + '"]');
    if (!row) row = template.content.firstElementChild.cloneNode(true);
    states.set(id, a);
    fill(row, a);
    place(row, a);
    showEmptyNotes();
  }

  // the rows as the server drew them: their states, for merging and ordering
  function stateOf(row) {
    const t = function (name) { return row.querySelector("[data-field=" + name + "]"); };
    const iso = function (name) { return t(name).getAttribute("datetime") || null; };
    return { id: Number(row.dataset.alertId), raised_at: row.dataset.raisedAt,
             acked_at: iso("acked_at"), acked_by: t("acked_by").textContent || null,
             cleared_at: iso("cleared_at"), cleared_value: t("cleared_value").textContent || null };
  }
  root.querySelectorAll("tbody tr[data-testid=alert]").forEach(function (row) {
    states.set(Number(row.dataset.alertId), stateOf(row));
  });

  function redraw() {
    fetch(root.dataset.snapshotUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        const json = (r.headers.get("Content-Type") || "").indexOf("application/json") === 0;
        return r.ok && json ? r.json() : null;
      })
      .then(function (snapshot) {
        if (!snapshot) return;
        lists.attention.replaceChildren();
        lists.closed.replaceChildren();
        states.clear();
        snapshot.attention.concat(snapshot.closed).forEach(apply);
        showEmptyNotes();
      })
      .catch(function () { /* the next reconnect tries again */ });
  }

  const count = root.querySelector("[data-testid=attention-count]");
  document.addEventListener("octopus:alert", function (event) { apply(event.detail); });
  document.addEventListener("octopus:alerts-count", function (event) { count.textContent = event.detail; });
  document.addEventListener("octopus:alerts-reconnected", redraw);
})();
