// The System page (system.py): its figures are fetched again every few seconds, drawn by the
// server (templates/_system_figures.html), so that the page and its refreshes show the same.
(function () {
  "use strict";
  const box = document.getElementById("system-figures");
  const state = document.querySelector("[data-testid=system-refresh]");
  if (!box) return;
  const everyMs = 1000 * Number(box.dataset.refreshS || 5);
  const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  function showTimes() {
    // portal.js shows the times of the page as loaded; these are new elements
    box.querySelectorAll("time[datetime]").forEach(function (el) {
      const ms = Date.parse(el.getAttribute("datetime"));
      if (!isNaN(ms)) el.textContent = timeOfDay.format(ms);
    });
  }

  function said(text, ok) {
    state.textContent = text;
    state.dataset.state = ok ? "live" : "refused";
  }

  function refresh() {
    fetch(box.dataset.refreshUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        if (r.redirected || !r.ok) throw new Error(r.redirected ? "logged out" : "HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        box.innerHTML = html;  // the portal's own template, escaped by Jinja
        showTimes();
        said("updated " + timeOfDay.format(Date.now()), true);
      })
      .catch(function (error) { said("not updated: " + error.message, false); })
      .finally(function () { setTimeout(refresh, everyMs); });
  }
  setTimeout(refresh, everyMs);
}());
