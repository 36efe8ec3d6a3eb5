"""Summarise a V8 CPU profile (`node --cpu-prof`): where Node-RED's main thread spent its time,
by function and by package."""
import json
import re
from collections import Counter
from pathlib import Path


def self_times(profile):
    """{node id: self time in ms} from a .cpuprofile's samples and time deltas."""
    times = Counter()
    for node_id, delta_us in zip(profile["samples"], profile["timeDeltas"]):
        times[node_id] += delta_us / 1000
    return times


def package_of(url):
    """Which package (or part of Node) a script URL belongs to."""
    if not url:
        return "(native / V8)"
    if url.startswith("node:"):
        return "node core"
    found = re.findall(r"node_modules/((?:@[^/]+/)?[^/]+)", url)
    if found:
        return found[-1]
    return Path(url).name


def summarise(profile, top=15):
    """(total ms, [(ms, function label)], [(ms, package)]), largest first."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    by_function, by_package = Counter(), Counter()
    times = self_times(profile)
    for node_id, ms in times.items():
        frame = nodes[node_id]["callFrame"]
        name = frame["functionName"] or "(anonymous)"
        url = frame.get("url", "")
        if url:
            by_function[f"{name} ({package_of(url)}:{frame.get('lineNumber', -1) + 1})"] += ms
        else:
            by_function[name if name.startswith("(") else f"{name} (native)"] += ms
        by_package[name if name.startswith("(") and not url else package_of(url)] += ms
    total = sum(times.values())
    return total, by_function.most_common(top), by_package.most_common(top)


def render(path, top=15):
    total, functions, packages = summarise(json.loads(Path(path).read_text()), top)
    lines = [f"Node-RED main thread CPU profile {path} ({total / 1000:.1f} s sampled, publish start → end)",
             "  self time by package:"]
    lines += [f"    {ms / total * 100:5.1f} %  {label}" for ms, label in
              ((ms, label) for label, ms in packages)]
    lines.append("  self time by function:")
    lines += [f"    {ms / total * 100:5.1f} %  {label}" for ms, label in
              ((ms, label) for label, ms in functions)]
    return "\n".join(lines)


class InspectorProfiler:
    """Record a CPU profile of a running Node.js over the inspector protocol (the process was
    started with NODE_OPTIONS=--inspect=127.0.0.1:<port>, which Node allows, unlike
    --cpu-prof), between start() and stop(): exactly the benchmark's run."""

    def __init__(self, port, interval_us=1000):
        import urllib.request

        import websocket  # websocket-client, from requirements-dev.txt
        inspector = f"http://127.0.0.1:{port}/json/list"
        with urllib.request.urlopen(inspector, timeout=5) as r:  # nosec B310  # a fixed http URL
            url = json.loads(r.read())[0]["webSocketDebuggerUrl"]
        self.ws = websocket.create_connection(url, timeout=60)
        self.next_id = 0
        self.call("Profiler.enable")
        self.call("Profiler.setSamplingInterval", interval=interval_us)

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def start(self):
        self.call("Profiler.start")

    def stop(self, path):
        """Stop, write the profile to `path` (.cpuprofile, loadable in Chrome DevTools)."""
        profile = self.call("Profiler.stop")["profile"]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(profile))
        self.ws.close()
        return path
