"""The expander of grafana_sql.py gives what Grafana's PostgreSQL data source gives (the
examples of Grafana's documentation and of its macros_test.go)."""
from datetime import datetime, timedelta, timezone

import pytest

from .grafana_sql import (GrafanaSQLError, expand, format_interval, interpolate_variables,
                          panel_interval_ms, rfc3339)

FROM = datetime(2017, 4, 21, 5, 1, 17, tzinfo=timezone.utc)
TO = datetime(2017, 4, 21, 5, 6, 17, tzinfo=timezone.utc)


@pytest.mark.parametrize("sql, expected", [
    ("WHERE $__timeFilter(dateColumn)",
     "WHERE dateColumn BETWEEN '2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17Z'"),
    ("SELECT $__timeGroup(dateColumn,'5m')", "SELECT floor(extract(epoch from dateColumn)/300)*300"),
    ("SELECT $__timeGroupAlias(dateColumn, 5m)",
     'SELECT floor(extract(epoch from dateColumn)/300)*300 AS "time"'),
    # pre-5.3 compatibility: followed by a comma, $__timeGroup gets the alias
    ("SELECT $__timeGroup(d, 1h), v", 'SELECT floor(extract(epoch from d)/3600)*3600 AS "time", v'),
    ("SELECT $__time(d), $__timeEpoch(d)", 'SELECT d AS "time", extract(epoch from d) as "time"'),
    ("x >= $__timeFrom() AND x < $__timeTo()",
     "x >= '2017-04-21T05:01:17Z' AND x < '2017-04-21T05:06:17Z'"),
    ("WHERE $__unixEpochFilter(t)", "WHERE t >= 1492750877 AND t <= 1492751177"),
    ("SELECT $__unixEpochFrom(), $__unixEpochTo()", "SELECT 1492750877, 1492751177"),
    ("GROUP BY $__timeGroup(d, $__interval) LIMIT $__interval_ms",
     "GROUP BY floor(extract(epoch from d)/120)*120 LIMIT 120000"),
])
def test_macros_expand_as_in_grafana(sql, expected):
    assert expand(sql, FROM, TO, 120_000) == expected


def test_time_with_a_fraction_of_a_second_is_rfc3339_nano():
    assert rfc3339(FROM.replace(microsecond=500_000)) == "2017-04-21T05:01:17.5Z"
    assert rfc3339(FROM.astimezone(timezone(timedelta(hours=2)))) == "2017-04-21T05:01:17Z"


def test_the_interval_is_rounded_and_bounded_by_the_panel_minimum():
    assert format_interval(60_000) == "1m" and format_interval(90_000) == "1m"
    assert format_interval(3_600_000) == "1h" and format_interval(86_400_000) == "1d"
    assert format_interval(500) == "500ms"
    hour = timedelta(hours=1)
    assert panel_interval_ms(TO - hour, TO) == 5_000          # 3.6 s a point: 5 s
    assert panel_interval_ms(TO - hour, TO, "1m") == 60_000   # never finer than 1m
    assert panel_interval_ms(TO - 30 * 24 * hour, TO, "1m") == 1_800_000  # 43 min: 30 min


def test_variables_are_quoted_as_the_sql_data_sources_do():
    variables = {"site": (["oficina", "o'brien"], True), "attribute": ("temperatura", False),
                 "one": ("sala", True), "id": (7, False), "name": ("it's", False)}
    sql = ("site IN ($site) AND a = '$attribute' AND r IN (${one}) AND d = $id "
           "AND n = '$name' AND $__timeFilter(ts)")
    assert interpolate_variables(sql, variables) == (
        "site IN ('oficina','o''brien') AND a = 'temperatura' AND r IN ('sala') AND d = 7 "
        "AND n = 'it''s' AND $__timeFilter(ts)")


def test_unknown_macros_variables_and_intervals_are_errors():
    for sql, message in (("$__timeFilterr(x)", "unknown macro"), ("$__timeGroup(x)", "needs"),
                         ("$__timeGroup(x, 5 minutes)", "parsing interval"),
                         ("site IN ($sitio)", "unknown variable"),
                         ("$__timeFilter()", "missing time column")):
        with pytest.raises(GrafanaSQLError, match=message):
            expand(sql, FROM, TO, 60_000)
