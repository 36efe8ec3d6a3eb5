"""What the dashboards read (postgres/migrations/011_reporting_views.sql), checked against
values computed from the raw readings, as Grafana's role: minute_series() and
group_minute_series() are exact over rolled-up minutes, a minute made pending again by a
late reading, and the current minute; the health views leave out what the role must not
see."""
from datetime import timedelta

import psycopg
import pytest
from psycopg import errors
from psycopg.rows import dict_row

from .conftest import RECLOSERS, SENSORS

RAW_PER_ATTRIBUTE = """
SELECT minute_of(m.ts) AS minute, d.site, d.room, d.name AS device, a.name AS attribute,
       count(*) AS n, sum(m.num) AS sum, min(m.num) AS min, max(m.num) AS max
  FROM measurements m JOIN attributes a ON a.id = m.attribute_id
  JOIN devices d ON d.id = a.device_id
 WHERE m.num IS NOT NULL AND a.name = ANY (%(attributes)s)
   AND minute_of(m.ts) >= minute_of(%(start)s) AND minute_of(m.ts) <= %(end)s
 GROUP BY 1, 2, 3, 4, 5"""

# The device with the min (max): the highest id among equal values, as in group_minute.
RAW_PER_GROUP = """
WITH readings AS (
    SELECT minute_of(m.ts) AS minute, d.id AS device_id,
           CASE WHEN %(per)s = 'all' THEN '' ELSE d.site END AS site,
           CASE WHEN %(per)s = 'room' THEN d.room ELSE '' END AS room,
           a.name AS attribute, m.num
      FROM measurements m JOIN attributes a ON a.id = m.attribute_id
      JOIN devices d ON d.id = a.device_id
     WHERE m.num IS NOT NULL AND a.name = ANY (%(attributes)s)
       AND minute_of(m.ts) >= minute_of(%(start)s) AND minute_of(m.ts) <= %(end)s
)
SELECT r.minute, r.site, r.room, r.attribute, count(*) AS n, sum(r.num) AS sum,
       min(r.num) AS min, max(r.num) AS max,
       (SELECT d.site || '/' || d.room || '/' || d.name FROM readings x JOIN devices d ON d.id = x.device_id
         WHERE (x.minute, x.site, x.room, x.attribute) = (r.minute, r.site, r.room, r.attribute)
         ORDER BY x.num, x.device_id DESC LIMIT 1) AS min_device,
       (SELECT d.site || '/' || d.room || '/' || d.name FROM readings x JOIN devices d ON d.id = x.device_id
         WHERE (x.minute, x.site, x.room, x.attribute) = (r.minute, r.site, r.room, r.attribute)
         ORDER BY x.num DESC, x.device_id DESC LIMIT 1) AS max_device
  FROM readings r
 GROUP BY 1, 2, 3, 4"""


@pytest.fixture(scope="module")
def reader(dashboard_data):
    with psycopg.connect(**dashboard_data.reader, autocommit=True, row_factory=dict_row) as conn:
        yield conn


def keyed(rows, *key):
    return {tuple(r[k] for k in key): r for r in rows}


def assert_same(got, expected):
    assert set(got) == set(expected), (set(got) ^ set(expected))
    for k, row in expected.items():
        for column in ("n", "sum", "min", "max"):
            assert got[k][column] == pytest.approx(row[column], rel=1e-12), (k, column)
        for column in ("min_device", "max_device"):
            if column in row:
                assert got[k][column] == row[column], (k, column)


def test_the_data_has_rolled_up_pending_and_current_minutes(reader, dashboard_data):
    pending = {r["minute"] for r in reader.execute("SELECT minute FROM rollup_invalidations")}
    assert dashboard_data.late_minute in pending
    assert len(pending) >= 2  # the late one and the current one
    rolled = reader.execute("SELECT count(*) AS n FROM measurements_minute").fetchone()["n"]
    assert rolled > 1000


@pytest.mark.parametrize("hours", [1, 3, 24 * 5])
def test_minute_series_is_exact_for_every_minute(reader, dashboard_data, hours):
    end = dashboard_data.now
    start = end - timedelta(hours=hours)
    attributes = ["temperatura", "ia", "fp"]
    params = {"start": start, "end": end, "attributes": attributes}
    expected = keyed(reader.execute(RAW_PER_ATTRIBUTE, params).fetchall(),
                     "minute", "site", "room", "device", "attribute")
    got = keyed(reader.execute("SELECT * FROM minute_series(%(start)s, %(end)s, %(attributes)s)",
                               params).fetchall(), "minute", "site", "room", "device", "attribute")
    assert len(expected) > 100
    assert_same(got, expected)
    # the late reading (99.5) is in its minute although that minute was rolled up before it
    spec = SENSORS[0]
    late = got[(dashboard_data.late_minute, spec.site, spec.room, spec.name, "temperatura")]
    assert late["max"] == 99.5


def test_minute_series_filters_by_every_level_and_by_device_id(reader, dashboard_data):
    end, start = dashboard_data.now, dashboard_data.now - timedelta(hours=1)
    spec = SENSORS[1]

    def devices(**filters):
        rows = reader.execute(
            "SELECT DISTINCT site, room, device, attribute FROM minute_series(%(start)s, %(end)s,"
            " p_attributes => %(attributes)s, p_sites => %(sites)s, p_rooms => %(rooms)s,"
            " p_devices => %(devices)s, p_device_ids => %(ids)s)",
            {"start": start, "end": end, "attributes": None, "sites": None, "rooms": None,
             "devices": None, "ids": None, **filters}).fetchall()
        return {(r["site"], r["room"], r["device"], r["attribute"]) for r in rows}

    one = devices(sites=[spec.site], rooms=[spec.room], devices=[spec.name],
                  attributes=["humedad"])
    assert one == {(spec.site, spec.room, spec.name, "humedad")}
    recloser_id = reader.execute("SELECT id FROM devices WHERE site = %s AND room = %s"
                                 " AND name = %s", RECLOSERS[1]).fetchone()["id"]
    by_id = devices(ids=[recloser_id])
    assert {d[:3] for d in by_id} == {RECLOSERS[1]}
    assert "estado" not in {d[3] for d in by_id}  # text: not in the numeric rollups
    assert len(devices()) == len(SENSORS) * 4 + len(RECLOSERS) * 9


@pytest.mark.parametrize("per", ["room", "site", "all"])
def test_group_minute_series_is_exact_with_the_devices_of_the_min_and_max(reader,
                                                                         dashboard_data, per):
    end, start = dashboard_data.now, dashboard_data.now - timedelta(hours=3)
    params = {"start": start, "end": end, "attributes": ["temperatura", "humedad"], "per": per}
    expected = keyed(reader.execute(RAW_PER_GROUP, params).fetchall(),
                     "minute", "site", "room", "attribute")
    got = keyed(reader.execute(
        "SELECT * FROM group_minute_series(%(start)s, %(end)s, %(attributes)s, p_per => %(per)s)",
        params).fetchall(), "minute", "site", "room", "attribute")
    assert len(expected) > 100
    assert_same(got, expected)


def test_group_minute_series_keeps_only_the_groups_asked_for(reader, dashboard_data):
    end, start = dashboard_data.now, dashboard_data.now - timedelta(hours=1)
    rows = reader.execute(
        "SELECT DISTINCT site, room FROM group_minute_series(%s, %s, '{temperatura}',"
        " p_sites => '{oficina}', p_rooms => '{sala}')", (start, end)).fetchall()
    assert [(r["site"], r["room"]) for r in rows] == [("oficina", "sala")]
    rows = reader.execute("SELECT DISTINCT site, room FROM group_minute_series(%s, %s,"
                          " '{temperatura}', p_per => 'site')", (start, end)).fetchall()
    assert {(r["site"], r["room"]) for r in rows} == {("oficina", ""), ("planta", "")}
    assert not reader.execute("SELECT * FROM group_minute_series(%s, %s, p_per => 'device')",
                              (start, end)).fetchall()


def test_health_views_leave_out_payloads_and_device_addresses(reader):
    rejects = reader.execute("SELECT * FROM reject_log ORDER BY id").fetchall()
    assert len(rejects) == 3 and "payload" not in rejects[0]
    assert rejects[2]["payload_size"] == 16
    polls = reader.execute("SELECT * FROM modbus_poll_status ORDER BY device").fetchall()
    assert [p["device"] for p in polls] == [name for _, _, name in RECLOSERS]
    assert not {"host", "port", "unit_id"} & set(polls[0])
    assert "10.20.30.40" not in str(polls)
    for statement in ("SELECT payload FROM rejects", "SELECT host FROM modbus_devices",
                      "SELECT * FROM modbus_poll_stats"):
        with pytest.raises(errors.InsufficientPrivilege):
            reader.execute(statement)


def test_the_rollups_are_read_for_the_chosen_attributes_only(reader, dashboard_data):
    """The attributes are found first and the rollup scan is restricted to them (by their
    primary key on real sizes), not every attribute's minutes joined afterwards: the reason
    these are functions and not a view."""
    end = dashboard_data.now
    plan = [r["QUERY PLAN"] for r in reader.execute(
        "EXPLAIN SELECT * FROM minute_series(%s, %s, '{temperatura}', '{oficina}')",
        (end - timedelta(days=2), end)).fetchall()]
    for i, line in enumerate(plan):
        if "on measurements_minute_" in line:
            condition = " ".join(plan[i + 1:i + 3])
            assert "attribute_id = ANY ($" in condition, "\n".join(plan)
            break
    else:
        pytest.fail("\n".join(plan))
