"""/api/v1/alerts: the list (attention, open, all; a topic filter; pages), one alert with its
history, acknowledging (scope write; once), a key's site, and the 4xx for bad input."""
import pytest

from octopus_portal.keys import create_key

from .test_portal_alerts import four_alerts, raise_alert
from .test_portal_alerts_live import Subscriber, live_app


def key(db, scopes=("read",), site=None):
    _, secret = create_key(db, f"integration-{'-'.join(scopes)}", list(scopes), site, None)
    return {"Authorization": f"Bearer {secret}"}


def get(client, headers, path="/api/v1/alerts", status=200, **params):
    response = client.get(path, headers=headers, query_string=params)
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def ids(answer):
    return [a["id"] for a in answer["alerts"]]


def test_the_list_needing_attention_open_and_all_newest_first(client, db):
    alerts = four_alerts(db)
    headers = key(db)
    newest_first = sorted(alerts.values(), reverse=True)
    attention = get(client, headers)
    assert ids(attention) == [i for i in newest_first if i != alerts["closed"]]
    assert attention["next"] is None
    assert ids(get(client, headers, state="open")) == [
        i for i in newest_first if i in (alerts["active"], alerts["acknowledged"])]
    everything = get(client, headers, state="all")["alerts"]
    assert [a["id"] for a in everything] == newest_first
    closed = next(a for a in everything if a["id"] == alerts["closed"])
    assert (closed["state"], closed["acked_by"], closed["cleared_value"]) == (
        "cleared", "olga", "27.5")
    assert closed["raised_at"].endswith("Z") and closed["device"] == "servidor4"


def test_a_topic_filter_a_site_key_and_pages(client, db):
    for i in range(5):
        raise_alert(db, device=f"servidor{i}")
    other = raise_alert(db, device="prensa", site="fabrica", room="linha1")
    reader = key(db)
    assert ids(get(client, reader, pattern="fabrica/#")) == [other]
    assert len(ids(get(client, reader, pattern="+/servidores/+/temperatura"))) == 5
    first = get(client, reader, limit=4)
    second = get(client, reader, limit=4, before=first["next"])
    assert len(first["alerts"]) == 4 and len(second["alerts"]) == 2
    assert second["next"] is None and not set(ids(first)) & set(ids(second))
    oficina = key(db, site="oficina")
    assert other not in ids(get(client, oficina, state="all"))
    assert len(ids(get(client, oficina, state="all"))) == 5
    assert "only covers site 'oficina'" in get(client, oficina, status=403,
                                               pattern="fabrica/#")["error"]
    assert "only covers site 'oficina'" in get(client, oficina, f"/api/v1/alerts/{other}",
                                               403)["error"]


def test_one_alert_with_its_history(client, db):
    alert_id = four_alerts(db)["cleared"]
    db.execute("INSERT INTO alert_events (alert_id, kind, value) VALUES (%s, 'cleared', '28.0')",
               (alert_id,))
    answer = get(client, key(db), f"/api/v1/alerts/{alert_id}")
    assert (answer["alert"]["id"], answer["alert"]["state"]) == (alert_id, "cleared")
    assert [(e["kind"], e["value"]) for e in answer["events"]] == [
        ("raised", "31.5"), ("cleared", "28.0")]
    assert answer["events"][0]["at"].endswith("Z")
    assert "no alert 999999" in get(client, key(db), "/api/v1/alerts/999999", 404)["error"]


def test_acknowledging_with_a_write_key_once_published_retained(make_app, mqtt_broker, db):
    app = live_app(make_app, mqtt_broker)
    client = app.test_client()
    alert_id = four_alerts(db)["active"]
    path = f"/api/v1/alerts/{alert_id}/ack"
    refused = client.post(path, headers=key(db))
    assert refused.status_code == 403 and "needs scope write" in refused.get_json()["error"]

    writer = key(db, ("read", "write"))
    done = client.post(path, headers=writer)
    assert done.status_code == 200, done.get_data(as_text=True)
    answer = done.get_json()
    assert (answer["changed"], answer["published"]) == (True, True)
    assert (answer["alert"]["state"], answer["alert"]["acked_by"]) == (
        "acknowledged", "API key integration-read-write")
    again = client.post(path, headers=writer).get_json()
    assert (again["changed"], again["published"]) == (False, None)
    assert again["alert"]["acked_at"] == answer["alert"]["acked_at"]
    events = get(client, writer, f"/api/v1/alerts/{alert_id}")["events"]
    assert [(e["kind"], e["actor"]) for e in events] == [
        ("raised", None), ("acknowledged", "API key integration-read-write")]

    subscriber = Subscriber(mqtt_broker)  # the portal's pages hear of it through the broker
    try:
        _topic, state, retained = subscriber.received()
    finally:
        subscriber.close()
    assert retained and (state["id"], state["state"]) == (alert_id, "acknowledged")
    assert client.post("/api/v1/alerts/999999/ack", headers=writer).status_code == 404


@pytest.mark.parametrize("params, message", [
    ({"state": "closed"}, "'state' 'closed' must be one of attention, open, all"),
    ({"pattern": "oficina/#/x"}, "# may only be the last level"),
    ({"limit": "0"}, "from 1 to 1,000"),
])
def test_bad_parameters_are_a_400_that_says_why(client, db, params, message):
    assert message in get(client, key(db), status=400, **params)["error"]
