// The live feed as pages other than the device tree use it: the portal's Socket.IO `live`
// event, which carries the octopus/live messages (doc/topics.md), to logged-in browsers
// only. Needs static/vendor/socket.io.min.js (the global `io`). The connection and its
// states are those of static/portal.js.
//
// onReading(reading, topic) for each reading; onState(state, reconnected) with state one of
// "live", "offline" (reconnecting), "refused" (the session has ended: no retry), and
// `reconnected` true on a "live" that follows a lost connection: readings sent in between
// were missed, so the page loads its data again.
export function followLiveReadings(onReading, onState) {
  const socket = io({ transports: ["websocket", "polling"] });
  let connectedBefore = false;
  socket.on("connect", () => {
    onState("live", connectedBefore);
    connectedBefore = true;
  });
  socket.on("disconnect", () => onState("offline", false));
  // not `active`: the server refused us (logged out or session expired), no retry
  socket.on("connect_error", () => onState(socket.active ? "offline" : "refused", false));
  socket.on("live", (message) => {
    const readings = message && Array.isArray(message.readings) ? message.readings : [];
    readings.forEach((r) => {
      if (!r || typeof r !== "object") return;
      onReading(r, `${r.site}/${r.room}/${r.device}/${r.attribute}`);
    });
  });
  return socket;
}
