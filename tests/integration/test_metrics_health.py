"""Issue 8, acceptance 3: /metrics counts exactly what was stored, and /healthz turns
unhealthy when PostgreSQL stops and healthy again when it is back, on the whole platform."""
import contextlib
import json
import time
import uuid

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import wait_for

READINGS = 250  # readings published on a fresh attribute
REJECTS = 7     # and messages with a topic of the wrong depth
REPORT_EVERY_S = 10  # each ingest worker's statistics (octopus/stats/ingest/<worker>)


def scrape(platform):
    """{(sample name, sorted labels): value} of one /metrics read with METRICS_TOKEN."""
    response = requests.get(f"{platform.portal_url}/metrics", timeout=10, headers={
        "Authorization": f"Bearer {platform.config['METRICS_TOKEN']}"})
    assert response.status_code == 200, response.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def per_worker(samples, name):
    return {dict(labels)["worker"]: value for (n, labels), value in samples.items() if n == name}


def scrape_reported_after(platform, moment):
    """A scrape in which every running worker has reported after `moment` (seconds since the
    epoch), so that its counters include everything stored before. A worker that has not
    reported for longer than its interval has stopped (e.g. another test's second worker,
    whose last report stays retained): its counters no longer change."""
    def fresh():
        samples = scrape(platform)
        reported = per_worker(samples, "octopus_ingest_report_timestamp_seconds")
        waiting = [worker for worker, at in reported.items() if at <= moment]
        stopped = time.time() > moment + REPORT_EVERY_S + 2  # those still waiting
        if len(waiting) < len(reported) and (not waiting or stopped):
            return samples
        return None
    return wait_for(fresh, 3 * REPORT_EVERY_S, interval=0.5,
                    what=f"a worker report after {moment:.0f}")


def total(samples, name):
    return sum(per_worker(samples, name).values())


@contextlib.contextmanager
def simulators_stopped(stack):
    """Nothing but the test publishes: the demo devices and the Modbus simulator (whose polled
    readings take the ingest too) are stopped, and started again afterwards."""
    stack.supervisor.stop("simulators")
    stack.supervisor.stop("modbus-simulators")
    try:
        yield
    finally:
        stack.start_simulators()


def stored_on(platform, site):
    ((readings,),) = platform.query(
        "SELECT count(*) FROM measurements m JOIN attributes a ON a.id = m.attribute_id"
        " JOIN devices d ON d.id = a.device_id WHERE d.site = %s", (site,))
    ((rejects,),) = platform.query("SELECT count(*) FROM rejects WHERE topic LIKE %s",
                                   (site + "/%",))
    return readings, rejects


def test_metrics_count_exactly_the_readings_and_rejects_stored(platform):
    site = f"met{uuid.uuid4().hex[:8]}"
    base_ms = int(time.time() * 1000)
    messages = [(f"{site}/sala/medidor/energia", json.dumps({"value": i, "ts": base_ms + i}))
                for i in range(READINGS)]
    messages += [(f"{site}/sin-sala/{i}", "1") for i in range(REJECTS)]  # 3 levels: rejects
    with simulators_stopped(platform.stack):
        time.sleep(2)  # what the simulators sent last is committed by now
        before = scrape_reported_after(platform, time.time())
        platform.publish(messages)
        wait_for(lambda: stored_on(platform, site) == (READINGS, REJECTS), 30,
                 what=f"{READINGS} readings and {REJECTS} rejects stored")
        after = scrape_reported_after(platform, time.time())
    assert total(after, "octopus_ingest_stored_total") - \
        total(before, "octopus_ingest_stored_total") == READINGS
    assert total(after, "octopus_ingest_rejected_total") - \
        total(before, "octopus_ingest_rejected_total") == REJECTS
    # the broker's own figures ($SYS, readable by the portal's account) and every part up
    assert after[("mosquitto_clients_connected", ())] >= 2  # Node-RED's and the portal's
    assert after[("mosquitto_publish_received_total", ())] > READINGS
    for component in ("broker", "database", "nodered"):
        assert after[("octopus_component_up", (("component", component),))] == 1, component


def healthz_says(platform, status):
    """/healthz's JSON if it answers `status` (no login: it is public), else None."""
    response = requests.get(f"{platform.portal_url}/healthz", timeout=10)
    return response.json() if response.status_code == status else None


def test_healthz_turns_unhealthy_without_postgresql_and_healthy_after(platform):
    wait_for(lambda: healthz_says(platform, 200), 30, what="a healthy platform")
    stack = platform.stack
    stack.supervisor.stop("postgres")  # SIGINT: a fast shutdown
    try:
        body = wait_for(lambda: healthz_says(platform, 503), 20, what="/healthz to say 503")
        assert "database" in body["down"] and body["components"]["database"] == "down"
        assert body["components"]["broker"] == "ok"
        # /metrics still answers the scraper (its token needs no database), and says why
        down = scrape(platform)
        assert down[("octopus_component_up", (("component", "database"),))] == 0
        assert not [name for name, _ in down if name == "octopus_devices"]
    finally:
        stack.start_postgres()
    body = wait_for(lambda: healthz_says(platform, 200), 60, what="/healthz to say 200 again")
    assert body == {"status": "ok", "components": {
        "broker": "ok", "database": "ok", "nodered": "ok"}}
