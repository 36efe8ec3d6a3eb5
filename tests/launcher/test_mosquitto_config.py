"""The native broker runs the committed mosquitto.conf with only ports and paths changed."""
import re

import pytest

from launcher import mosquitto


def render(text=None):
    text = text or (mosquitto.REPO_MOSQUITTO / "mosquitto.conf").read_text()
    return mosquitto.render_config(text, bind="127.0.0.1", port=11883, ws_port=19001,
                                   state_dir="/state", acl_file="/repo/acl")


def directives(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_only_listeners_and_paths_change():
    original = directives((mosquitto.REPO_MOSQUITTO / "mosquitto.conf").read_text())
    rendered = directives(render())
    changed = {a: b for a, b in zip(original, rendered) if a != b}
    assert changed == {
        "listener 1883": "listener 11883 127.0.0.1",
        "listener 9001": "listener 19001 127.0.0.1",
        "password_file /mosquitto/config/passwd": "password_file /state/passwd",
        "acl_file /mosquitto/config/acl": "acl_file /repo/acl",
        "persistence_location /mosquitto/data/": "persistence_location /state/data/",
    }
    assert re.search(r"^user \S+$", render(), re.M)


def test_committed_config_is_locked_down():
    text = (mosquitto.REPO_MOSQUITTO / "mosquitto.conf").read_text()
    assert re.search(r"^allow_anonymous false$", text, re.M)
    assert re.search(r"^password_file ", text, re.M) and re.search(r"^acl_file ", text, re.M)


def test_a_config_missing_a_listener_is_refused():
    with pytest.raises(ValueError, match="listener 9001"):
        render("listener 1883\npassword_file x\nacl_file y\npersistence_location z\n")


def test_password_file_is_hashed(tmp_path):
    path = tmp_path / "passwd"
    mosquitto.write_password_file(path, {"alice": "secret-1", "bob": "secret-2"})
    text = path.read_text()
    assert "secret-1" not in text and "secret-2" not in text
    assert [line.split(":")[0] for line in text.splitlines()] == ["alice", "bob"]
    assert path.stat().st_mode & 0o777 == 0o600
