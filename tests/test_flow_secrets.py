"""No flow JSON in the repository carries a password, token or key in clear: a secret-like
property is empty or a whole ${ENV_VAR} placeholder, which Node-RED substitutes at load time
(doc/security.md). The second half shows the check finds what it must."""
import json
import re
import subprocess

import pytest

from tests.helpers import ROOT

# Property names that hold secrets in Node-RED's own and our nodes (credentials of the mqtt
# broker, postgres, e-mail and http request nodes; tokens; keys).
SECRET_NAME = re.compile(r"pass(word|phrase)?|secret|token|api_?key|private_?key|"
                         r"credential|^key$|bearer|auth$", re.I)
PLACEHOLDER = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
# node-red-contrib-postgresql's config node names the variable instead: passwordEnv: PGPASSWORD
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
# Secrets recognisable by their form wherever they appear in a flow.
SECRET_VALUE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----|oct_[A-Za-z0-9_-]{43}|"
                          r"Bearer [A-Za-z0-9._~+/-]{16,}|://[^/\s:@]+:[^/\s@]+@")


def flow_files():
    """Every tracked JSON file that is a Node-RED flow (a list of nodes) or a credentials
    file (an object of node ids to credentials)."""
    tracked = subprocess.run(["git", "ls-files", "*.json"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.split()
    for name in tracked:
        if "node_modules" in name or name.endswith(("package.json", "package-lock.json")):
            continue
        data = json.loads((ROOT / name).read_text())
        if (isinstance(data, list) and data and all(isinstance(n, dict) and "type" in n
                                                     for n in data)) or "cred" in name:
            yield name, data


def secrets_in_clear(data, path="$"):
    """[(where, why)] of every value that looks like a secret written in clear."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}"
            names_a_variable = key.endswith("Env") and ENV_NAME.fullmatch(str(value))
            if isinstance(value, str) and SECRET_NAME.search(key) and value \
                    and not PLACEHOLDER.fullmatch(value) and not names_a_variable:
                found.append((where, f"{key!r} is not empty and not a ${{ENV_VAR}} placeholder"))
            found += secrets_in_clear(value, where)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += secrets_in_clear(value, f"{path}[{i}]")
    elif isinstance(data, str) and SECRET_VALUE.search(data):
        found.append((path, "the text contains a secret (a private key, an API key, a bearer "
                            "token or a password in a URL)"))
    return found


def test_the_repository_has_flows_to_check():
    names = [name for name, _ in flow_files()]
    assert "flows/octopus.json" in names and "flows/credentials.template.json" in names


@pytest.mark.parametrize("name", [name for name, _ in flow_files()])
def test_no_flow_carries_a_secret_in_clear(name):
    data = json.loads((ROOT / name).read_text())
    assert secrets_in_clear(data) == []


@pytest.mark.parametrize("node", [
    {"id": "b", "type": "mqtt-broker", "credentials": {"user": "octopus", "password": "hunter2"}},
    {"id": "p", "type": "postgreSQLConfig", "password": "s3cret"},
    {"id": "q", "type": "postgreSQLConfig", "passwordEnv": "s3cret-typed-here"},
    {"id": "h", "type": "http request", "url": "https://user:pw@example.com/hook"},
    {"id": "f", "type": "function", "func": "msg.headers = {Authorization: 'Bearer "
                                            "abcdefghijklmnopqrstuvwxyz'}; return msg;"},
    {"id": "t", "type": "tls-config", "key": "-----BEGIN PRIVATE KEY-----\nMIIE..."},
    {"id": "k", "type": "change", "rules": [{"t": "set", "p": "headers.x",
                                             "to": "oct_" + "a" * 43}]},
])
def test_the_check_finds_a_secret_in_clear(node):
    assert secrets_in_clear([node]) != []


def test_placeholders_and_empty_values_pass():
    assert secrets_in_clear([{"id": "b", "type": "mqtt-broker", "password": "${MQTT_PASSWORD}",
                              "credentials": {"user": "${MQTT_USER}", "password": ""}}]) == []
