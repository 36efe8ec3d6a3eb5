// Topic filters as MQTT writes them (site/room/device/attribute, `+` one level, `#` the rest),
// the way the API reads them (webapp/octopus_portal/history.py, Selection).

export function matches(filter, topic) {
  const want = filter.split("/");
  const have = topic.split("/");
  for (let i = 0; i < want.length; i++) {
    if (want[i] === "#") return true;
    if (i >= have.length || (want[i] !== "+" && want[i] !== have[i])) return false;
  }
  return want.length === have.length;
}

// One filter for a CSV export of several topics: each level kept where they agree, `+`
// where they differ. `exact` says whether it matches no other of the `known` topics.
export function exportPattern(topics, known) {
  if (!topics.length) return { pattern: "", exact: true };
  const levels = topics[0].split("/").map((level, i) =>
    topics.every((t) => t.split("/")[i] === level) ? level : "+");
  const pattern = levels.join("/");
  const exact = [...known].filter((t) => matches(pattern, t)).length <= topics.length;
  return { pattern: pattern, exact: exact };
}
