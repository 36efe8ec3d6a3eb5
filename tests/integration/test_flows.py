"""Acceptance 6 and the editor's round trip: the project's flows run in a real Node-RED, a
flow imported through the admin API (as the editor does) is deployed, written back to the
flow file and still there after a restart."""
import json
import queue
import uuid
from pathlib import Path

import requests

from tests.helpers import ROOT
from tests.integration.conftest import wait_for


def admin(platform):
    return {"Authorization": f"Bearer {platform.nodered_token()}"}


def running_flows(platform):
    answer = requests.get(platform.nodered_url + "/flows", timeout=10,
                          headers={**admin(platform), "Node-RED-API-Version": "v2"})
    answer.raise_for_status()
    return answer.json()["flows"]


def test_project_flows_are_the_ones_running(platform):
    shipped = json.loads((ROOT / "flows" / "octopus.json").read_text())
    running = {node["id"]: node for node in running_flows(platform)}
    for node in shipped:
        assert node["id"] in running, f"{node['type']} {node['id']} is not running"
        assert running[node["id"]]["type"] == node["type"]


def subscriber(platform, topic):
    messages = queue.Queue()
    client = platform.mqtt_client("PORTAL")
    client.on_message = lambda c, u, m: messages.put(m.payload.decode())
    client.subscribe(topic, qos=1)
    return client, messages


def test_imported_flow_is_deployed_saved_and_survives_a_restart(platform):
    tag = uuid.uuid4().hex[:8]
    topic = f"octopus/test/{tag}"
    tab = f"tab-{tag}"
    flow = {"id": tab, "label": f"Imported {tag}", "nodes": [
        {"id": f"inject-{tag}", "type": "inject", "z": tab, "name": "once at start",
         "once": True, "onceDelay": "1", "payload": tag, "payloadType": "str", "topic": "",
         "repeat": "", "props": [{"p": "payload"}], "x": 150, "y": 80, "wires": [[f"out-{tag}"]]},
        {"id": f"out-{tag}", "type": "mqtt out", "z": tab, "name": "", "topic": topic, "qos": "1",
         "retain": "false", "broker": "octopus-broker", "x": 400, "y": 80, "wires": []},
    ]}
    client, messages = subscriber(platform, topic)
    try:
        answer = requests.post(platform.nodered_url + "/flow", json=flow, timeout=10,
                               headers=admin(platform))
        assert answer.status_code == 200, answer.text
        tab = answer.json()["id"]  # Node-RED gives an added flow an id of its own
        assert wait_for(lambda: messages.get(timeout=15), 20, what="the imported flow's message") == tag

        flow_file = Path(platform.config["NODERED_FLOWS_FILE"])
        saved = json.loads(flow_file.read_text())
        assert sorted(n["type"] for n in saved if n.get("z") == tab) == ["inject", "mqtt out"], \
            "deployed flow not written back to the flow file"
        assert flow_file.read_text().startswith("[\n    {"), "flow file not pretty-printed"

        platform.stack.supervisor.stop("nodered")
        platform.stack.start_nodered()
        assert any(n["id"] == tab for n in running_flows(platform))
        assert wait_for(lambda: messages.get(timeout=15), 30, what="the message after restart") == tag
    finally:
        client.disconnect()
        client.loop_stop()
        requests.delete(f"{platform.nodered_url}/flow/{tab}", headers=admin(platform), timeout=10)
