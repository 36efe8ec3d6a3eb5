// The nav's Alerts badge, on every page: how many alerts need attention, kept current by
// the portal's Socket.IO `alert` events (namespace /alerts: live.py forwards the states
// published on octopus/alerts/#). The namespace shares the page's Socket.IO connection when
// the page has one: the client multiplexes namespaces over one connection per origin.
//
// It passes what it hears on to the page as DOM events, for static/alerts.js:
// `octopus:alert` (detail: one alert's state), `octopus:alerts-count` (detail: the count)
// and `octopus:alerts-reconnected` (events may have been missed: redraw).
(function () {
  "use strict";
  const badge = document.querySelector("[data-testid=alerts-badge]");
  const platformBanner = document.querySelector("[data-testid=platform-alert]");
  if (!badge) return;

  function tell(name, detail) {
    document.dispatchEvent(new CustomEvent(name, { detail: detail }));
  }

  function show(count) {
    badge.textContent = String(count);
    badge.hidden = count <= 0;
    tell("octopus:alerts-count", count);
  }

  // The count comes from the server: an event says that something changed, not whether the
  // alert was already counted. A burst of events (the retained states the portal receives
  // again when it reconnects to the broker) costs one request.
  let pending = null;
  function refresh() {
    pending = null;
    fetch(badge.dataset.countUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        const json = (r.headers.get("Content-Type") || "").indexOf("application/json") === 0;
        return r.ok && json ? r.json() : null;
      })
      .then(function (body) { if (body && typeof body.needs_attention === "number") show(body.needs_attention); })
      .catch(function () { /* the next event or reconnect tries again */ });
  }
  function refreshSoon() {
    if (!pending) pending = setTimeout(refresh, 300);
  }

  function follow() {
    const socket = io("/alerts", { transports: ["websocket", "polling"] });
    let connectedBefore = false;
    socket.on("connect", function () {
      refreshSoon();  // whatever changed between the page's rendering and now
      if (connectedBefore) tell("octopus:alerts-reconnected");
      connectedBefore = true;
    });
    socket.on("alert", function (alert) {
      if (!alert || typeof alert !== "object") return;
      if (alert.id === null) {
        // the platform's own alert raised while the database is unreachable: it is in no
        // list yet (nothing could store it), so every page says it at the top
        platformBanner.textContent = alert.message;
        platformBanner.hidden = alert.state !== "active";
        return;
      }
      tell("octopus:alert", alert);
      refreshSoon();
    });
  }

  if (typeof io === "function") {
    follow();  // the page loaded the Socket.IO client itself
  } else {
    const script = document.createElement("script");
    script.src = badge.dataset.socketioSrc;
    script.onload = follow;
    document.head.appendChild(script);
  }
})();
