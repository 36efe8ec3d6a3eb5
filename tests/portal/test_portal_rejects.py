"""The rejects page: reasons, sizes, safe previews, the total."""
import re

from octopus_portal.rejects import payload_preview, visible

from .helpers import ingest


def test_rejects_page_shows_reason_size_and_previews(logged_in, db):
    ingest(db, rejects=[
        ("a/b", "wrong depth", "héllo".encode(), 6),
        ("s/r/d/t", "not UTF-8", b"\xff\xfe\x00abc", 6),
        ("s/r/d/e", "empty payload", b"", 0),
    ])
    html = logged_in.get("/rejects").get_data(as_text=True)
    assert 'data-testid="rejects-total">3<' in html
    for reason in ("wrong depth", "not UTF-8", "empty payload"):
        assert reason in html
    assert 'class="preview-text" data-testid="reject-preview">héllo<' in html
    assert 'class="preview-hex" data-testid="reject-preview">ff fe 00 61 62 63<' in html
    assert ">6 B<" in html
    assert "(empty)" in html


def test_rejects_page_lists_the_latest_200_and_counts_all(logged_in, db):
    for batch in range(5):
        ingest(db, rejects=[(f"t/{batch}/{i}", "bad", b"x", 1) for i in range(50)])
    html = logged_in.get("/rejects").get_data(as_text=True)
    assert 'data-testid="rejects-total">250<' in html
    assert html.count('data-testid="reject"') == 200
    assert "t/4/49" in html and "t/0/0" not in html  # newest first


def test_no_rejects(logged_in):
    assert 'data-testid="rejects-empty"' in logged_in.get("/rejects").get_data(as_text=True)


def test_payload_preview():
    assert payload_preview(b"23,5", 4) == ("text", "23,5")
    assert payload_preview(b"\xc3\xa9t\xc3", 10) == ("text", "ét…")  # cut inside a character
    assert payload_preview(b"\xc3\xa9t\xc3", 4) == ("hex", "c3 a9 74 c3")  # complete: invalid
    assert payload_preview(b"a\nb\x00", 4) == ("text", "a\\nb\\x00")
    kind, preview = payload_preview(b"\xff" * 100, 5000)
    assert kind == "hex" and preview.endswith(" …") and len(preview.split()) == 49
    kind, preview = payload_preview(b"x" * 500, 500)
    assert kind == "text" and preview == "x" * 120 + "…"


def test_visible_escapes_invisible_characters():
    assert visible("ok\t\u200b\u0007") == "ok\\t\\u200b\\x07"
    assert re.fullmatch(r"[ -~]+", visible("\x1b[31mred"))
