"""The API's query parameters and time formats: times with a zone, ranges, IANA zones."""
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import request

from ..history import Selection, check_range
from .errors import ApiError, quoted

DEFAULT_RANGE = timedelta(hours=24)
PAGE_DEFAULT, PAGE_MAX = 100, 1000  # rows per page of a list that pages back by id
# Times outside these are typos, and would overflow date arithmetic near year 1 or 9999.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9999, 1, 1, tzinfo=timezone.utc)
CONTROL_CHARACTERS = {chr(c) for c in range(0x20)} | {"\x7f"}
# RFC 3339 (the OpenAPI date-time format), zone optional here so that its absence gets its
# own message; fromisoformat() alone would also take forms such as 20261122T1200.
TIME_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,6})?"
                         r"([Zz]|[+-]\d{2}:\d{2})?", re.ASCII)


def text(name, default=None, required=False):
    """A query parameter as text: `default` if absent; ApiError 400 if it is required and
    absent, empty, or holds control characters (PostgreSQL text cannot even hold NUL)."""
    value = request.args.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"'{name}' is required")
        return default
    if value == "":
        raise ApiError(400, f"'{name}' is empty: give a value" +
                       ("" if required else ", or leave it out for the default"))
    if CONTROL_CHARACTERS.intersection(value):
        raise ApiError(400, f"'{name}' contains a control character")
    return value


def parse_time(name, value):
    """An ISO 8601 time with a zone (`2026-11-22T12:00:00Z`, `...+01:00`) as a UTC datetime."""
    try:
        if not TIME_FORMAT.fullmatch(value):
            raise ValueError(value)
        ts = datetime.fromisoformat(value.upper())
    except ValueError:
        # the usual slip: an offset's '+' sent unescaped in a URL arrives as a space
        hint = " (write the '+' of an offset as %2B in a URL)" if " " in value else ""
        raise ApiError(400, f"'{name}' {quoted(value)} is not an ISO 8601 time, "
                            f"e.g. 2026-11-22T12:00:00Z{hint}") from None
    if ts.tzinfo is None:
        raise ApiError(400, f"'{name}' {quoted(value)} has no time zone: add Z (UTC) or an offset "
                            "such as +01:00")
    ts = ts.astimezone(timezone.utc)
    if not EARLIEST <= ts < LATEST:
        raise ApiError(400, f"'{name}' {quoted(value)} is outside 1970-01-01 to 9999-01-01")
    return ts


def time_range(longest=None):
    """(start, end) from `from` and `to`: by default the 24 hours up to `to` (or now);
    ApiError / SelectionError 400 if the range is inverted or longer than `longest`."""
    raw_start, raw_end = text("from"), text("to")
    end = parse_time("to", raw_end) if raw_end is not None else datetime.now(timezone.utc)
    start = parse_time("from", raw_start) if raw_start is not None else end - DEFAULT_RANGE
    check_range(start, end, longest)
    return start, end


def zone():
    """The `tz` parameter as a ZoneInfo (default UTC); ApiError 400 if it names no zone."""
    name = text("tz", "UTC")
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError):  # KeyError: ZoneInfoNotFoundError
        raise ApiError(400, f"'tz' {quoted(name)} is not an IANA time zone, e.g. Europe/Lisbon "
                            "or UTC") from None


def whole_number(name, default, low, high):
    """An integer parameter from `low` to `high` (`default` if absent); ApiError 400 otherwise."""
    raw = text(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and low <= int(raw) <= high):
        raise ApiError(400, f"'{name}' {quoted(raw)} must be a whole number from {low} to "
                            f"{high:,}")
    return int(raw)


def page():
    """(`limit`, `before`) of a list that pages back by id: how many (1 to PAGE_MAX), and
    the `next` of the page before (None for the newest page); ApiError 400 if bad."""
    return (whole_number("limit", PAGE_DEFAULT, 1, PAGE_MAX),
            whole_number("before", None, 0, 10 ** 18 - 1))


def pattern(name="pattern"):
    """A topic filter parameter (default `#`) as a Selection; SelectionError 400 if bad."""
    return Selection.parse(text(name, "#"))


def iso_utc(ts):
    """A timestamp as ISO 8601 UTC with Z: milliseconds, or microseconds when it has them."""
    if ts is None:
        return None
    ts = ts.astimezone(timezone.utc)
    spec = "microseconds" if ts.microsecond % 1000 else "milliseconds"
    return ts.isoformat(timespec=spec).replace("+00:00", "Z")


def iso_in(ts, tz):
    """A timestamp as ISO 8601 in zone `tz`, with its offset (exact to the microsecond)."""
    return ts.astimezone(tz).isoformat()
