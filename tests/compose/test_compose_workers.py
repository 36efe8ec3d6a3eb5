"""docker-compose.workers.yaml (a second Node-RED ingest worker, doc/operations.md "Scaling
out"), merged with docker-compose.yaml by Compose itself: the worker is nodered's twin with
its own MQTT client id and user folder, no published port, the flows read-only, and the
shared subscription reaches both workers literally from .env."""
import json

import pytest
import yaml

from tests.compose.test_compose import COMPOSE_FILE, dummy_env, run_compose
from tests.helpers import ROOT

WORKERS_FILE = ROOT / "docker-compose.workers.yaml"
SHARED = "$share/octopus-ingest/#"


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    """The merged model, with .env naming the shared subscription as operations.md says."""
    env = dict(dummy_env(), INGEST_SUBSCRIPTION=f"'{SHARED}'")
    result = run_compose(env, "config", "--format", "json", files=(COMPOSE_FILE, WORKERS_FILE),
                         tmp_path=tmp_path_factory.mktemp("compose"))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"]


def test_the_worker_is_nodereds_twin_with_its_own_session_and_folder(merged):
    first, second = merged["nodered"], merged["nodered-2"]
    assert second["image"] == first["image"]
    assert second["depends_on"] == first["depends_on"]
    assert second["healthcheck"]["test"] == first["healthcheck"]["test"]
    assert second["restart"] == first["restart"]
    differs = {key for key in first["environment"].keys() | second["environment"].keys()
               if first["environment"].get(key) != second["environment"].get(key)}
    assert differs == {"NODERED_MQTT_CLIENT_ID"}
    mounts = {name: {v["target"]: v for v in merged[name]["volumes"]}
              for name in ("nodered", "nodered-2")}
    assert mounts["nodered"]["/data"]["source"] != mounts["nodered-2"]["/data"]["source"]
    assert mounts["nodered-2"]["/opt/octopus/flows"]["read_only"]
    assert set(mounts["nodered"]) == set(mounts["nodered-2"])
    assert not second.get("ports")


def test_the_shared_subscription_reaches_both_workers_literally(merged):
    # `config` writes a Compose file, in which a literal `$` is written `$$`
    for name in ("nodered", "nodered-2"):
        assert merged[name]["environment"]["INGEST_SUBSCRIPTION"] == SHARED.replace("$", "$$")


def test_the_workers_file_adds_only_the_worker(merged):
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    started = {name for name, s in compose["services"].items() if not s.get("profiles")}
    assert set(merged) == started | {"nodered-2"}
    assert "extends:\n      file: docker-compose.yaml\n      service: nodered\n" in \
        WORKERS_FILE.read_text()
