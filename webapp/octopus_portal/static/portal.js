// Octopus portal: shows every time in the browser's time zone, and on the devices page
// keeps the device tree current from the `live` Socket.IO event (see doc/topics.md,
// octopus/live). Page elements carry data-key="site/room/device/attribute".
(function () {
  "use strict";

  // --- times: shown in the browser's zone; the exact instant on hover ---------------------
  // Formatters are made once: building one per call is what makes toLocaleString() slow.
  const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const dayAndTime = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

  function formatTime(ms) {
    const midnight = new Date();
    midnight.setHours(0, 0, 0, 0);
    const today = ms >= midnight.getTime() && ms < midnight.getTime() + 864e5;
    return (today ? timeOfDay : dayAndTime).format(ms);
  }

  function showTime(el, iso, ms) {
    el.setAttribute("datetime", iso);
    el.textContent = formatTime(ms);
  }

  document.querySelectorAll("time[datetime]").forEach(function (el) {
    const ms = Date.parse(el.getAttribute("datetime"));
    if (!isNaN(ms)) el.textContent = formatTime(ms);
  });
  document.addEventListener("mouseover", function (event) {
    const el = event.target.closest && event.target.closest("time[datetime]");
    const ms = el && Date.parse(el.getAttribute("datetime"));
    if (ms) el.title = new Date(ms).toString();
  });

  const tree = document.getElementById("device-tree");
  if (!tree || typeof io === "undefined") return;

  // --- the tree: find a node by key, or make it from its <template> -----------------------
  const nodes = new Map();  // data-key -> element
  tree.querySelectorAll("[data-key]").forEach(function (el) { nodes.set(el.dataset.key, el); });
  const emptyNote = document.querySelector("[data-testid=devices-empty]");
  const LEVELS = [  // site, room, device, attribute: template and where children go
    { template: "template-site", children: function () { return tree; } },
    { template: "template-room", children: function (site) { return site.querySelector(".rooms"); } },
    { template: "template-device", children: function (room) { return room.querySelector(".devices"); } },
    { template: "template-attribute", children: function (device) { return device.querySelector("tbody"); } },
  ];

  function isName(part) { return typeof part === "string" && part !== "" && part.indexOf("/") < 0; }

  function insertSorted(container, el) {
    // siblings share the key prefix, so comparing keys orders them by name like the server
    for (const child of container.children) {
      if (child.dataset.key > el.dataset.key) { container.insertBefore(el, child); return; }
    }
    container.appendChild(el);
  }

  function ensureNode(parts) {
    const key = parts.join("/");
    let el = nodes.get(key);
    if (el) return el;
    const level = LEVELS[parts.length - 1];
    const parent = parts.length > 1 ? ensureNode(parts.slice(0, -1)) : null;
    el = document.getElementById(level.template).content.querySelector("[data-key]").cloneNode(true);
    el.dataset.key = key;
    el.querySelector(".name").textContent = parts[parts.length - 1];
    const commands = el.querySelector(":scope > header > a.device-commands");
    if (commands) commands.href = "/devices/" + parts.map(encodeURIComponent).join("/") + "/commands";
    insertSorted(level.children(parent), el);
    nodes.set(key, el);
    if (emptyNote) emptyNote.hidden = true;
    return el;
  }

  // The parts of an element that live messages change, looked up once per element.
  const parts = new WeakMap();
  function partsOf(el) {
    let p = parts.get(el);
    if (!p) {
      const time = el.querySelector("time.ts");
      p = { value: el.querySelector(".value"), unit: el.querySelector(".unit"),
            time: time, badge: el.querySelector("[data-testid=status]"),
            ts: Date.parse((time && time.getAttribute("datetime")) || "") };
      if (p.badge) p.ts = Date.parse(p.badge.dataset.ts || "");
      parts.set(el, p);
    }
    return p;
  }

  function formatValue(value) {
    // 15 significant digits, like the server's rendering: 0.1 + 0.2 shows as 0.3
    return typeof value === "number" ? String(Number(value.toPrecision(15))) : String(value);
  }

  // --- applying messages: queued per key, drawn once per animation frame --------------------
  // Many readings of one attribute between two frames cost one DOM update, and a hidden tab
  // does no work at all (the queue holds one entry per attribute, so it stays bounded).
  const pendingReadings = new Map();
  const pendingStatuses = new Map();
  let frameRequested = false;

  function newer(queued, next) {
    return !queued || !(Date.parse(next.ts) < Date.parse(queued.ts)) ? next : queued;
  }

  function applyReading(r, key) {
    const p = partsOf(ensureNode(key.split("/")));
    const ts = Date.parse(r.ts);
    const text = formatValue(r.value);
    // an older reading never replaces a newer one, as in the database's last-value cache
    if (ts < p.ts || (ts === p.ts && p.value.textContent === text)) return;
    p.value.textContent = text;
    if (r.unit !== null && r.unit !== undefined) p.unit.textContent = r.unit;
    if (!isNaN(ts)) { showTime(p.time, r.ts, ts); p.ts = ts; }
    if (flashing) {
      // alternating between two identical animations restarts the highlight without a reflow
      const row = p.value.closest(".attribute");
      row.dataset.flash = row.dataset.flash === "a" ? "b" : "a";
    }
  }

  function applyStatus(s, key) {
    const p = partsOf(ensureNode(key.split("/")));
    const ts = Date.parse(s.ts);
    if (ts < p.ts) return;
    p.badge.textContent = s.status;
    p.badge.dataset.status = s.status;
    p.badge.className = "status status-" + s.status;
    if (!isNaN(ts)) { p.badge.dataset.ts = s.ts; p.ts = ts; }
  }

  // Highlighting changed values helps the eye when a few change; when many change in one
  // frame it tells nothing and costs a repaint of each row for a second: no highlight then.
  const FLASH_LIMIT = 50;
  let flashing = true;

  function draw() {
    frameRequested = false;
    flashing = pendingReadings.size <= FLASH_LIMIT;
    pendingStatuses.forEach(applyStatus);
    pendingReadings.forEach(applyReading);
    pendingStatuses.clear();
    pendingReadings.clear();
  }

  const rejectsNote = document.querySelector("[data-testid=live-rejects]");
  let newRejects = 0;

  function queueMessage(message) {
    if (!message || typeof message !== "object") return;
    (Array.isArray(message.readings) ? message.readings : []).forEach(function (r) {
      if (!r || ![r.site, r.room, r.device, r.attribute].every(isName) || r.value === undefined) return;
      const key = r.site + "/" + r.room + "/" + r.device + "/" + r.attribute;
      pendingReadings.set(key, newer(pendingReadings.get(key), r));
    });
    (Array.isArray(message.statuses) ? message.statuses : []).forEach(function (s) {
      if (!s || ![s.site, s.room, s.device].every(isName)) return;
      if (s.status !== "online" && s.status !== "offline") return;
      const key = s.site + "/" + s.room + "/" + s.device;
      pendingStatuses.set(key, newer(pendingStatuses.get(key), s));
    });
    if (rejectsNote && message.rejects > 0) {
      newRejects += message.rejects;
      rejectsNote.querySelector("[data-testid=live-rejects-count]").textContent = newRejects;
      rejectsNote.hidden = false;
    }
    if (!frameRequested) { frameRequested = true; requestAnimationFrame(draw); }
  }

  // --- the connection ----------------------------------------------------------------------
  const stateEl = document.querySelector("[data-testid=live-state]");
  function setState(state, text) { stateEl.dataset.state = state; stateEl.textContent = text; }

  function catchUp() {
    // the last values as stored, for whatever was published while no socket was open
    fetch(tree.dataset.snapshotUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        const json = (r.headers.get("Content-Type") || "").indexOf("application/json") === 0;
        return r.ok && json ? r.json() : null;
      })
      .then(function (snapshot) { if (snapshot) queueMessage(snapshot); })
      .catch(function () { /* the next reconnect tries again */ });
  }

  const socket = io({ transports: ["websocket", "polling"] });
  socket.on("connect", function () { setState("live", "live"); catchUp(); });
  socket.on("disconnect", function () { setState("offline", "reconnecting…"); });
  socket.on("connect_error", function () {
    // not `active`: the server refused us (logged out or session expired), no retry
    if (socket.active) setState("offline", "reconnecting…");
    else setState("refused", "logged out: reload the page");
  });
  socket.on("live", queueMessage);
})();
