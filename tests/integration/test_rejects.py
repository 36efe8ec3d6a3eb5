"""Acceptance 4: each kind of malformed message is kept as a reject with its reason, and the
valid traffic published in between is all stored."""
import re
import uuid

from tests.integration.conftest import wait_for

ONE_MB = 1_000_000


def test_malformed_messages_are_rejected_and_valid_ones_all_stored(platform):
    tag = uuid.uuid4().hex[:8]
    bad = {
        # topic, payload, what the reason must say
        "depth3": (f"rj{tag}/room/depth3", b"21.0", r"level"),
        "depth6": (f"rj{tag}/room/dev/attr/x/y", b"21.0", r"level"),
        "empty": (f"rj{tag}//empty/temperatura", b"21.0", r"empty"),
        "utf8": (f"rj{tag}/room/utf8/temperatura", b"\xff\xfe\xfdabc", r"UTF-8"),
        "garbage": (f"rj{tag}/room/garbage/temperatura", b"#@!%&", r"number|value|state|pars"),
        "huge": (f"rj{tag}/room/huge/temperatura", b"7" * ONE_MB, r"exceed|large|limit"),
    }
    valid_topic = f"rj{tag}/room/valid/temperatura"
    messages = []
    for n, (topic, payload, _) in enumerate(bad.values()):
        messages.append((valid_topic, str(n * 2)))
        messages.append((topic, payload))
        messages.append((valid_topic, str(n * 2 + 1)))
    platform.publish(messages)

    rows = wait_for(lambda: (lambda r: r if len(r) == len(bad) else None)(platform.query(
        "SELECT topic, reason, payload_size, length(payload) FROM rejects WHERE topic LIKE %s",
        (f"rj{tag}/%",))), what="one reject per malformed message")
    by_topic = {topic: (reason, size, kept) for topic, reason, size, kept in rows}
    for name, (topic, payload, reason_pattern) in bad.items():
        reason, size, kept = by_topic[topic]
        assert re.search(reason_pattern, reason, re.I), f"{name}: reason {reason!r}"
        assert size == len(payload), name
        assert 0 < kept <= 4096, name

    values = wait_for(lambda: (lambda r: r if len(r) == 2 * len(bad) else None)(platform.query(
        "SELECT m.num FROM measurements m JOIN attributes a ON a.id = m.attribute_id"
        " JOIN devices d ON d.id = a.device_id WHERE d.site = %s AND d.name = 'valid'"
        " ORDER BY m.num", (f"rj{tag}",))), what="every valid reading")
    assert [v for (v,) in values] == list(range(2 * len(bad)))
