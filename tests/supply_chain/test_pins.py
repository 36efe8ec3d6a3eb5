"""Every Python package an install brings is pinned (doc/security.md, Supply chain): the
four requirements files that something installs on its own pin what their packages pull in,
at the version installed here, so that a fresh machine tomorrow gets what these tests ran
with. The second test shows that the check sees a missing or stale pin."""
import pytest

from tests.supply_chain import pins


@pytest.mark.parametrize("path", pins.FILES)
def test_what_a_requirements_file_pulls_in_is_pinned_at_the_installed_version(path):
    missing = pins.unpinned(path)
    assert not missing, (f"{path} installs these unpinned or at another version; add or "
                         "correct them:\n" + "\n".join(missing))


def test_the_check_names_missing_and_stale_pins_and_follows_extras(tmp_path):
    (tmp_path / "base.txt").write_text("# a comment\nflask==3.1.3  # the portal\n")
    (tmp_path / "top.txt").write_text("-r base.txt\nwerkzeug==0.1\n--only-binary x\n"
                                      "python-socketio==5.18.1\n")
    missing = pins.unpinned(tmp_path / "top.txt")
    names = [line.split("==")[0] for line in missing]
    assert "jinja2" in names and "blinker" in names, missing  # Flask's, not pinned
    assert f"werkzeug=={pins.pulled_in(pins.requirements(tmp_path / 'top.txt'))['werkzeug']}" \
        in missing  # pinned, at another version than installed
    assert "flask" not in names and "python-socketio" not in names
    assert "requests" not in names, "python-socketio's [client] extra was not asked for"

    (tmp_path / "client.txt").write_text("python-socketio[client]==5.18.1\n")
    assert "requests" in [line.split("==")[0] for line in pins.unpinned(tmp_path / "client.txt")]
