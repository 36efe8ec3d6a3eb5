"""A fresh platform per scenario: the launcher's own Stack (same commands, same config files)
on free ports in a temporary folder; only what a scenario needs is started."""
import re
import shutil
import tempfile
from pathlib import Path

from launcher import mosquitto
from launcher.stack import Stack, isolated_config, port_open

BENCH = Path(__file__).resolve().parent

# Mosquitto options that Octopus's mosquitto.conf sets and a tutorial user would not: without
# them the broker keeps its defaults (max_queued_messages 1000, max_inflight_messages 20, no
# byte limits, QoS 0 messages not queued).
QUEUE_OPTIONS = ("max_queued_messages", "max_queued_bytes", "max_inflight_messages",
                 "max_inflight_bytes", "queue_qos0_messages")


def without_queue_limits(conf_text):
    """A rendered mosquitto.conf with Octopus's queue options removed (Mosquitto's defaults)."""
    pattern = r"^(%s)\b.*$" % "|".join(QUEUE_OPTIONS)
    text = re.sub(pattern, "", conf_text, flags=re.M)
    return text + "\n# benchmark: queue and inflight options removed, Mosquitto's defaults apply\n"


class BenchStack(Stack):
    """Octopus's Stack in a temporary folder (removed by `close()` unless `keep`)."""

    def __init__(self, label, keep=False):
        state_dir = Path(tempfile.mkdtemp(prefix=f"octopus-bench-{label}-"))
        state_dir.chmod(0o755)   # PostgreSQL and Mosquitto run as their own users
        super().__init__(isolated_config(), state_dir=state_dir)
        self.keep = keep
        self.inspector_port = None   # set when Node-RED is started for a CPU profile

    @property
    def mqtt(self):
        return self.host, int(self.config["MQTT_PORT"])

    def account(self, kind):
        return self.config[f"MQTT_{kind}_USER"], self.config[f"MQTT_{kind}_PASSWORD"]

    def pid(self, name):
        return self.supervisor.procs[name][0].pid

    def start_mosquitto_with_default_queues(self):
        """Mosquitto as start_mosquitto() starts it, but with the queue limits a tutorial
        user has: Mosquitto's defaults."""
        conf = mosquitto.prepare(self.state_dir / "mosquitto", self.config)
        conf.write_text(without_queue_limits(conf.read_text()))
        self.supervisor.start("mosquitto", mosquitto.command(conf), env=self.env())
        self.supervisor.wait_ready("mosquitto", lambda: port_open(*self.mqtt))

    def start_nodered_with(self, settings_file, flows_file):
        """Node-RED as start_nodered() starts it, with another settings file and flow (the
        tutorial's); the flow is copied into the state folder so the repository's stays as is."""
        flow_copy = self.state_dir / Path(flows_file).name
        shutil.copyfile(flows_file, flow_copy)
        self.start_nodered(settings_file=settings_file, NODERED_FLOWS_FILE=str(flow_copy))

    def close(self):
        self.stop()
        if not self.keep:
            shutil.rmtree(self.state_dir, ignore_errors=True)
