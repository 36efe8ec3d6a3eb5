"""GET /api/v1/rejects: the payload as kept, paging with `next`, the topic filter, the key's
site, and the 4xx for bad input."""
import base64

import pytest

from octopus_portal.keys import create_key

from .helpers import ingest

LONG = b"{" + b"x" * 5000  # longer than the ingest keeps: 4,096 bytes stored


@pytest.fixture
def rejects(db):
    ingest(db, rejects=[
        ("planta/a/b/c", "not UTF-8", b"\xff\xfe1", 3),
        ("oficina/sala", "topic has 2 levels", "23,5 °C".encode(), 8),
        ("planta/x/y/z", "payload is not valid JSON", LONG[:4096], len(LONG)),
    ])
    return db


def call(client, db, status=200, site=None, scopes=("read",), **params):
    _, secret = create_key(db, "reader", list(scopes), site, None)
    response = client.get("/api/v1/rejects", query_string=params,
                          headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def test_rejects_newest_first_with_the_payload_as_kept(client, rejects):
    answer = call(client, rejects)
    assert answer["next"] is None
    cut, text, binary = answer["rejects"]
    assert [r["topic"] for r in answer["rejects"]] == ["planta/x/y/z", "oficina/sala",
                                                       "planta/a/b/c"]
    assert (text["reason"], text["size"], text["payload_text"], text["payload_cut"]) == (
        "topic has 2 levels", 8, "23,5 °C", False)
    assert base64.b64decode(text["payload_base64"]) == "23,5 °C".encode()
    assert text["received_at"].endswith("Z") and isinstance(text["id"], int)
    assert binary["payload_text"] is None
    assert base64.b64decode(binary["payload_base64"]) == b"\xff\xfe1"
    assert (cut["size"], cut["payload_cut"], len(cut["payload_text"])) == (5001, True, 4096)
    assert base64.b64decode(cut["payload_base64"]) == LONG[:4096]


def test_next_pages_back_through_every_reject_once(client, db):
    ingest(db, rejects=[(f"s/r/d/{i}", "bad", b"x", 1) for i in range(25)])
    seen, before = [], None
    while True:
        answer = call(client, db, limit=10, **({"before": before} if before else {}))
        seen += [r["topic"] for r in answer["rejects"]]
        before = answer["next"]
        if before is None:
            break
    assert seen == [f"s/r/d/{i}" for i in reversed(range(25))]


def test_a_topic_filter_and_a_site_key(client, rejects):
    planta = call(client, rejects, topic="planta/#")["rejects"]
    assert [r["topic"] for r in planta] == ["planta/x/y/z", "planta/a/b/c"]
    assert [r["topic"] for r in call(client, rejects, topic="+/+/+/c")["rejects"]] == [
        "planta/a/b/c"]
    own = call(client, rejects, site="oficina")["rejects"]
    assert [r["topic"] for r in own] == ["oficina/sala"]
    assert call(client, rejects, site="oficina", topic="+/+/+/c")["rejects"] == []
    refused = call(client, rejects, 403, site="oficina", topic="planta/#")
    assert "only covers site 'oficina'" in refused["error"]


@pytest.mark.parametrize("params, message", [
    ({"limit": "0"}, "'limit' '0' must be a whole number from 1 to 1,000"),
    ({"limit": "1001"}, "from 1 to 1,000"),
    ({"limit": "ten"}, "from 1 to 1,000"),
    ({"before": "2026-11-22"}, "'before' '2026-11-22' must be a whole number from 0 to"),
    ({"topic": "planta/#/x"}, "# may only be the last level"),
    ({"topic": ""}, "'topic' is empty"),
])
def test_bad_parameters_are_a_400_that_says_why(client, rejects, params, message):
    assert message in call(client, rejects, 400, **params)["error"]


def test_without_a_key_nothing(client, rejects):
    response = client.get("/api/v1/rejects")
    assert response.status_code == 401
    assert "planta" not in response.get_data(as_text=True)
