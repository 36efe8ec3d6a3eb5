"""The rejects page: reasons, sizes, safe previews, the total, a topic filter, older pages."""
import re

import pytest

from octopus_portal import rejects
from octopus_portal.rejects import TopicFilter, payload_preview, visible

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


def shown_topics(html):
    return re.findall(r'data-testid="reject-topic"><code>([^<]*)</code>', html)


def older_link(html):
    found = re.search(r'<a href="([^"]*)"\s+data-testid="rejects-older"', html)
    return found and found.group(1).replace("&amp;", "&")


def test_past_the_count_cap_the_page_says_more_than(logged_in, db, monkeypatch):
    monkeypatch.setattr(rejects, "COUNT_CAP", 3)
    ingest(db, rejects=[(f"t/{i}", "bad", b"x", 1) for i in range(5)])
    summary = logged_in.get("/rejects").get_data(as_text=True)
    assert re.search(r'More than <span data-testid="rejects-total">3</span> rejected\s+messages',
                     summary)
    monkeypatch.setattr(rejects, "COUNT_CAP", 5)
    html = logged_in.get("/rejects").get_data(as_text=True)
    assert "More than" not in html and 'data-testid="rejects-total">5<' in html


def test_rejects_page_lists_the_latest_200_counts_all_and_pages_back(logged_in, db):
    for batch in range(5):
        ingest(db, rejects=[(f"t/{batch}/{i}", "bad", b"x", 1) for i in range(50)])
    html = logged_in.get("/rejects").get_data(as_text=True)
    assert 'data-testid="rejects-total">250<' in html
    first = shown_topics(html)
    assert len(first) == 200
    assert first[0] == "t/4/49" and "t/0/0" not in first  # newest first
    older = logged_in.get(older_link(html)).get_data(as_text=True)
    second = shown_topics(older)
    assert len(second) == 50 and second[-1] == "t/0/0"
    assert not set(first) & set(second)
    assert older_link(older) is None


TOPICS = ["planta/produccion/maquina1/voltaje", "planta/produccion/maquina1", "planta",
          "oficina/sala/sensor1/temperatura", "oficina/sala/sensor1/", "/almacen/sensor1/x",
          "planta/almacen/sensor1/humedad/raw", "plantax/a/b/c", "a.b/c", "axb/c"]


@pytest.mark.parametrize("topic_filter, expected", [
    ("planta/#", ["planta/produccion/maquina1/voltaje", "planta/produccion/maquina1", "planta",
                  "planta/almacen/sensor1/humedad/raw"]),
    ("+/+/sensor1/#", ["oficina/sala/sensor1/temperatura", "oficina/sala/sensor1/",
                       "planta/almacen/sensor1/humedad/raw", "/almacen/sensor1/x"]),
    # + matches an empty level too, as in MQTT
    ("+/+/sensor1/+", ["oficina/sala/sensor1/temperatura", "oficina/sala/sensor1/",
                       "/almacen/sensor1/x"]),
    ("planta/produccion/maquina1", ["planta/produccion/maquina1"]),
    ("/almacen/#", ["/almacen/sensor1/x"]),
    ("a.b/c", ["a.b/c"]),
    ("#", TOPICS),
])
def test_a_topic_filter_shows_only_the_rejects_it_matches_as_mqtt_would(
        logged_in, db, topic_filter, expected):
    ingest(db, rejects=[(t, "bad", b"x", 1) for t in TOPICS])
    response = logged_in.get("/rejects", query_string={"topic": topic_filter})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert sorted(shown_topics(html)) == sorted(expected)
    assert f'value="{topic_filter}"' in html  # the form keeps it
    assert 'data-testid="rejects-total">10<' in html  # the total stays the table's


def test_each_topic_links_to_its_own_rejects_and_older_pages_keep_the_filter(logged_in, db):
    ingest(db, rejects=[(f"s/r/d{i % 2}/t", "bad", str(i).encode(), len(str(i)))
                        for i in range(450)])
    html = logged_in.get("/rejects").get_data(as_text=True)
    link = re.search(r'<a href="([^"]*)" title="only this topic\'s rejects"', html).group(1)
    page = logged_in.get(link.replace("&amp;", "&")).get_data(as_text=True)
    topics = shown_topics(page)
    assert len(topics) == 200 and set(topics) == {"s/r/d1/t"}
    more = logged_in.get(older_link(page)).get_data(as_text=True)
    assert shown_topics(more) == ["s/r/d1/t"] * 25
    assert re.findall(r'data-testid="reject-preview">(\d+)<', more)[-1] == "1"


@pytest.mark.parametrize("topic_filter, message", [
    ("planta/#/x", "# may only be the last level"),
    ("planta/sens+", "+ and # stand for a whole level"),
    ("a\x00b", "a NUL character"),
])
def test_a_bad_filter_is_a_400_that_says_why(logged_in, db, topic_filter, message):
    ingest(db, rejects=[("planta/x", "bad", b"x", 1)])
    response = logged_in.get("/rejects", query_string={"topic": topic_filter})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html and 'data-testid="rejects-problem"' in html
    assert shown_topics(html) == []


@pytest.mark.parametrize("topic, shown", [("s/r\n/d\x1b[0m/t", "s/r\\n/d\\x1b[0m/t"),
                                          ("s/r/d/t ", "s/r/d/t ")])
def test_an_odd_topic_links_to_its_own_rejects(logged_in, db, topic, shown):
    ingest(db, rejects=[("s/r/d/t", "bad", b"2", 1), (topic, "odd topic", b"1", 1)])
    html = logged_in.get("/rejects").get_data(as_text=True)
    assert shown in shown_topics(html)
    link = re.findall(r'<a href="([^"]*)" title="only this topic\'s rejects"', html)[0]  # newest
    page = logged_in.get(link.replace("&amp;", "&"))
    assert page.status_code == 200
    assert shown_topics(page.get_data(as_text=True)) == [shown]


def test_a_filter_that_matches_nothing_says_so(logged_in, db):
    ingest(db, rejects=[("planta/x", "bad", b"x", 1)])
    html = logged_in.get("/rejects?topic=oficina/%23").get_data(as_text=True)
    assert "No rejects on a topic that matches oficina/#" in html


def test_a_topic_filter_is_a_regular_expression_only_where_mqtt_has_wildcards(db):
    matches = []
    for topic_filter, topic in [("a.b/+", "a.b/c"), ("a.b/+", "axb/c"), ("(x)/#", "(x)"),
                                ("[a]/*", "[a]/*"), ("[a]/*", "a/x"), ("ü$/+", "ü$/1"),
                                ("\\d/#", "\\d/q"), ("\\d/#", "1/q")]:
        regex = TopicFilter.parse(topic_filter).regex()
        matches.append(db.execute("SELECT %s ~ %s AS m", (topic, regex)).fetchone()["m"])
    assert matches == [True, False, True, True, False, True, True, False]


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
