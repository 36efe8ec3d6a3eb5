"""Acceptance 7: the README and doc/ say what a newcomer needs, and what they say is true."""
import re

from launcher.settings import SECRET_KEYS
from tests.helpers import ROOT

README = (ROOT / "README.md").read_text()


def test_readme_gives_the_two_commands_and_they_exist():
    assert "./octopus up" in README and "./octopus test" in README
    script = (ROOT / "octopus").read_text()
    assert re.search(r"^\s+up\)", script, re.M) and re.search(r"^\s+test\)", script, re.M)
    assert "./octopus test" in (ROOT / ".ci" / "run").read_text()


def test_readme_lists_the_addresses_and_where_the_credentials_are():
    for address in ("http://127.0.0.1:5000/", "http://127.0.0.1:1880/", "mqtt://127.0.0.1:1883",
                    "ws://127.0.0.1:9001"):
        assert address in README
    for key in ("PORTAL_ADMIN_PASSWORD", "NODERED_ADMIN_PASSWORD", "MQTT_SIMULATOR_PASSWORD"):
        assert key in README and key in SECRET_KEYS


def test_readme_has_the_topic_contract_and_a_mermaid_diagram():
    assert "<site>/<room>/<device>/<attribute>" in README
    assert "oficina/servidores/servidor1/temperatura" in README
    assert re.search(r"```mermaid\n(flowchart|graph) ", README)


def test_doc_has_architecture_and_topic_contract():
    architecture = (ROOT / "doc" / "architecture.md").read_text()
    topics = (ROOT / "doc" / "topics.md").read_text()
    assert "```mermaid" in architecture
    for topic in ("octopus/live", "<site>/<room>/<device>/status", "/set"):
        assert topic in topics


def test_documented_links_resolve():
    for doc in [ROOT / "README.md", *sorted((ROOT / "doc").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"
