"""A database of simulated data for the dashboards' tests, stored the way the platform stores
it: the sensor simulators' devices and attributes (simulators/octopus_simulators/layout.py)
with their drifting values, two OSM27 reclosers with the grid model's values under the
names of modbus/profiles/osm27.json (a trip, so the state changes), availability, rejects,
Modbus polling figures, all through ingest_batch(); then the upkeep's run_maintenance(), as
Node-RED's maintenance node calls it, and afterwards a late reading and readings of the
current minute, so that minutes still pending are in the data too."""
import json
import random
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import sql

from octopus_simulators.grid import FeederSettings, Recloser
from octopus_simulators.layout import ATTRIBUTES, fleet
from octopus_simulators.values import Drift
from tests.helpers import ROOT
from tests.portal.helpers import ingest

OSM27 = json.loads((ROOT / "modbus/profiles/osm27.json").read_text())
RECLOSERS = [("planta", "subestacion", f"reconectador{i}") for i in (1, 2)]
SENSORS = fleet(8)
HISTORY = timedelta(hours=2)
SENSOR_STEP = timedelta(seconds=30)
RECLOSER_STEP = timedelta(seconds=10)
OLDER_DAYS = 3  # one reading an hour on the days before, in other partitions


class DashboardData:
    """Where the data is (`owner`: libpq parameters of the owner, `reader`: of Grafana's
    role), and `now`: a time after all of it was stored."""

    def __init__(self, owner, reader, now):
        self.owner, self.reader, self.now = owner, reader, now
        self.late_minute = None


def sensor_readings(now, rng):
    rows, start = [], now - HISTORY
    times = [start + i * SENSOR_STEP for i in range(int(HISTORY / SENSOR_STEP))]
    times = [now - timedelta(days=d, hours=h) for d in range(1, OLDER_DAYS + 1)
             for h in range(0, 24, 1)] + times
    times.sort()
    for spec in SENSORS:
        drifts = {a.name: Drift(*spec.kind.set_points[a.name], a.daily_swing, rng)
                  for a in ATTRIBUTES}
        for t in times:
            for a in ATTRIBUTES:
                rows.append((spec.site, spec.room, spec.name, a.name, t,
                             round(drifts[a.name].next(t.timestamp()), a.decimals), None, a.unit))
    return rows


def recloser_readings(now, rng):
    units = {a["name"]: a.get("unit") for a in OSM27["attributes"]}
    rows, start = [], now - HISTORY
    for index, (site, room, name) in enumerate(RECLOSERS):
        model = Recloser(rng, FeederSettings(mean_time_between_trips_s=1e12), tz=timezone.utc)
        for i in range(int(HISTORY / RECLOSER_STEP)):
            t = start + i * RECLOSER_STEP
            if index == 0 and i == 300:
                model.trip(t.timestamp())  # opens, recloses after its dead time
            values = model.step(t.timestamp())
            for attribute, unit in units.items():
                value = values[attribute]
                if isinstance(value, str):
                    rows.append((site, room, name, attribute, t, None, value, unit))
                else:
                    rows.append((site, room, name, attribute, t, value, None, unit))
    return rows


def store(conn, rows, statuses=(), rejects=(), batch=4000):
    for i in range(0, max(len(rows), 1), batch):
        ingest(conn, rows[i:i + batch], statuses if i == 0 else (), rejects if i == 0 else ())


def fill(conn, now):
    rng = random.Random(8)
    readings = sensor_readings(now, rng) + recloser_readings(now, rng)
    statuses = [(s.site, s.room, s.name, "online", now - HISTORY) for s in SENSORS]
    statuses += [(site, room, name, "online", now - HISTORY) for site, room, name in RECLOSERS]
    statuses.append((SENSORS[-1].site, SENSORS[-1].room, SENSORS[-1].name, "offline",
                     now - timedelta(minutes=5)))
    rejects = [("oficina/servidores", "topic has 2 levels, a measurement topic has 4",
                b"23.5", 4),
               ("oficina/sala/sensor1/temperatura", "payload is not a number: 'hot'", b"hot", 3),
               ("oficina/sala/sensor1/humedad", "payload is not a number: 'secret'",
                b"password=hunter2", 16)]
    store(conn, readings, statuses, rejects)

    for index, (site, room, name) in enumerate(RECLOSERS):
        device_id = conn.execute(
            "INSERT INTO modbus_devices (site, room, name, host, port, unit_id, profile)"
            " VALUES (%s, %s, %s, '10.20.30.40', %s, 1, 'osm27') RETURNING id",
            (site, room, name, 5020 + index)).fetchone()[0]
        conn.execute(
            "INSERT INTO modbus_poll_stats (device_id, worker, since, status, polls, ok,"
            " timeouts, connection_errors, consecutive_failures, last_ok_at, last_error,"
            " last_error_at, late_ms_max) VALUES (%s, 'octopus-nodered', %s, %s, 7200, %s,"
            " %s, 0, %s, %s, %s, %s, 12)",
            (device_id, now - HISTORY, "online" if index == 0 else "offline",
             7200 if index == 0 else 7100, 0 if index == 0 else 100, 0 if index == 0 else 3,
             now, None if index == 0 else "timeout: no answer in 1000 ms",
             None if index == 0 else now))


@pytest.fixture(scope="module")
def dashboard_data(pg_cluster):
    """The module's database (a copy of the migrated template) with the simulated data."""
    name = f"test_grafana_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_cluster.superuser_conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE octopus_template OWNER octopus")
                     .format(sql.Identifier(name)))
    owner = dict(pg_cluster.app_role, dbname=name)
    reader = dict(pg_cluster.logins["grafana"], dbname=name)
    now = datetime.now(timezone.utc)
    data = DashboardData(owner, reader, now)
    with psycopg.connect(**owner, autocommit=True) as conn:
        fill(conn, now)
        # the upkeep, as Node-RED's maintenance node runs it (retention off)
        conn.execute("SELECT run_maintenance(0, 0)")
        # then a late reading of a minute already rolled up, and the current minute
        data.late_minute = (now - timedelta(minutes=30)).replace(second=0, microsecond=0)
        spec = SENSORS[0]
        ingest(conn, [(spec.site, spec.room, spec.name, "temperatura",
                       data.late_minute + timedelta(seconds=1, microseconds=500), 99.5, None, "°C"),
                      (spec.site, spec.room, spec.name, "temperatura",
                       datetime.now(timezone.utc), 24.0, None, "°C")])
        conn.execute("ANALYZE")
    # what Grafana's "now" is when someone looks: after everything was stored (rejects are
    # stamped by the database)
    data.now = datetime.now(timezone.utc)
    yield data
    with psycopg.connect(pg_cluster.superuser_conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
