"""The OpenAPI 3.0 document of /api/v1, served at /api/v1/openapi.json (Swagger UI reads it).

OpenAPI 3.0 rather than 3.1: the Swagger UI we ship (swagger-ui-bundle 1.1.0, Swagger UI
4.15) renders 3.0. tests/portal/test_api_schemathesis.py checks the answers against it.
"""
from flask import jsonify

from . import bp
from .alerts import STATES as ALERT_STATES
from .ingest import MAX_READINGS
from .params import PAGE_DEFAULT, PAGE_MAX

TIME_EXAMPLE = "2026-11-22T12:00:00Z"


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def param(name, description, required=False, example=None, **schema):
    """A query parameter (a string unless `schema` says otherwise)."""
    out = {"name": name, "in": "query", "required": required, "description": description,
           "schema": {"type": "string", **schema}}
    if example is not None:
        out["example"] = example
    return out


FROM = param("from", "Start of the range (included): ISO 8601 with a zone. Default: 24 h "
             "before `to`.", format="date-time", example="2026-11-22T00:00:00Z")
TO = param("to", "End of the range (excluded): ISO 8601 with a zone. Default: now.",
           format="date-time", example="2026-11-23T00:00:00+01:00")
PATTERN = param("pattern", "MQTT topic filter over site/room/device/attribute: names, `+` "
                "for one level, `#` (last) for the rest.", minLength=1, default="#",
                example="oficina/+/+/temperatura")
DEVICES = param("devices", "Which devices: a filter of up to 3 levels (site/room/device), "
                "e.g. `oficina/#`, `oficina/servidores`, `+/+/sensor1`.", minLength=1,
                default="#", example="oficina/#")
ATTRIBUTE = param("attribute", "One attribute name.", required=True, minLength=1,
                  example="temperatura")

BEFORE = param("before", "Only older entries: the `next` of the page before", type="integer",
               minimum=0, maximum=10 ** 18 - 1)
LIMIT = param("limit", "How many per page", type="integer", minimum=1, maximum=PAGE_MAX,
              default=PAGE_DEFAULT)

ALERT_ID = {"name": "alert_id", "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1}}

NULLABLE_TIME = {"type": "string", "format": "date-time", "nullable": True}
TEXT = {"type": "string"}
NULLABLE_TEXT = {"type": "string", "nullable": True}
NUMBER = {"type": "number"}
NEXT = {"type": "integer", "nullable": True,
        "description": "`before` for the next page (older entries); null on the last page"}
VALUE = {"description": "A number, or the text of a state or boolean reading",
         "oneOf": [{"type": "number"}, {"type": "string"}]}


def obj(properties, required=None):
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required}


SCHEMAS = {
    "Error": obj({"error": {"type": "string", "description": "What was wrong, for a person"}}),
    "Attribute": obj({"topic": TEXT, "site": TEXT, "room": TEXT, "device": TEXT,
                      "attribute": TEXT, "unit": NULLABLE_TEXT}),
    "Device": obj({
        "site": TEXT, "room": TEXT, "name": TEXT, "topic": TEXT,
        "status": {"type": "string", "enum": ["online", "offline"], "nullable": True},
        "status_at": NULLABLE_TIME, "first_seen": NULLABLE_TIME, "last_seen": NULLABLE_TIME,
        "attributes": {"type": "array", "items": obj({
            "name": TEXT, "topic": TEXT, "unit": NULLABLE_TEXT, "last_ts": NULLABLE_TIME,
            "last_value": {**VALUE, "nullable": True}})}}),
    "Reading": obj({"topic": TEXT, "ts": {"type": "string", "format": "date-time"},
                    "value": VALUE, "unit": NULLABLE_TEXT}),
    "RawPoint": obj({"ts": {"type": "string", "format": "date-time"}, "value": VALUE}),
    "BucketPoint": obj({"ts": {"type": "string", "format": "date-time"}, "mean": NUMBER,
                        "min": NUMBER, "max": NUMBER, "n": {"type": "integer"}}),
    "History": obj({
        "topic": TEXT, "unit": NULLABLE_TEXT,
        "resolution": {"type": "string", "enum": ["raw", "minute", "hour"]},
        "from": {"type": "string", "format": "date-time"},
        "to": {"type": "string", "format": "date-time"},
        "points": {"type": "array", "description": "RawPoint for raw, BucketPoint otherwise",
                   "items": {"oneOf": [ref("RawPoint"), ref("BucketPoint")]}}}),
    "Minute": obj({"minute": {"type": "string", "format": "date-time"}, "mean": NUMBER,
                   "min": NUMBER, "max": NUMBER, "n": {"type": "integer"},
                   "min_device": NULLABLE_TEXT, "max_device": NULLABLE_TEXT}),
    "Aggregates": obj({"devices": TEXT, "attribute": TEXT,
                       "from": {"type": "string", "format": "date-time"},
                       "to": {"type": "string", "format": "date-time"},
                       "minutes": {"type": "array", "items": ref("Minute")}}),
    "Reject": obj({
        "id": {"type": "integer"}, "received_at": {"type": "string", "format": "date-time"},
        "topic": TEXT, "reason": {"type": "string", "description": "Why it was not stored"},
        "size": {"type": "integer", "description": "The payload's size in bytes"},
        "payload_base64": {"type": "string", "description": "The payload as kept: its first "
                           "4,096 bytes"},
        "payload_text": {**NULLABLE_TEXT, "description": "The kept payload as text; null if "
                         "it is not UTF-8"},
        "payload_cut": {"type": "boolean", "description": "true if only the first 4,096 "
                        "bytes were kept"}}),
    "Rejects": obj({"rejects": {"type": "array", "items": ref("Reject")},
                    "next": NEXT}),
    "Alert": obj({
        "id": {"type": "integer"}, "rule_id": {"type": "integer", "nullable": True,
                                                "description": "null once the rule is deleted"},
        "rule_name": TEXT, "site": TEXT, "room": TEXT, "device": TEXT,
        "attribute": {"type": "string", "description": "`status` for an offline alert"},
        "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
        "message": TEXT,
        "state": {"type": "string", "enum": ["active", "acknowledged", "cleared"]},
        "raised_at": {"type": "string", "format": "date-time"}, "raised_value": NULLABLE_TEXT,
        "acked_at": NULLABLE_TIME, "acked_by": NULLABLE_TEXT, "cleared_at": NULLABLE_TIME,
        "cleared_value": NULLABLE_TEXT, "flapping": {"type": "boolean"}}),
    "Alerts": obj({"alerts": {"type": "array", "items": ref("Alert")}, "next": NEXT}),
    "AlertHistory": obj({"alert": ref("Alert"), "events": {"type": "array", "items": obj({
        "at": {"type": "string", "format": "date-time"},
        "kind": {"type": "string", "enum": ["raised", "acknowledged", "cleared", "notified",
                                            "suppressed", "flapping"]},
        "value": NULLABLE_TEXT, "actor": NULLABLE_TEXT, "detail": NULLABLE_TEXT})}}),
    "Acknowledged": obj({
        "alert": ref("Alert"),
        "changed": {"type": "boolean", "description": "false: it was acknowledged already"},
        "published": {"type": "boolean", "nullable": True, "description": "whether the "
                      "broker took the new state (portal pages, MQTT); null if unchanged"}}),
    "NewReading": {
        "type": "object", "required": ["topic", "value"], "additionalProperties": False,
        "properties": {
            "topic": {"type": "string", "example": "oficina/servidores/servidor1/temperatura",
                      "description": "site/room/device/attribute: no + or #, not under octopus/"},
            "value": {"oneOf": [{"type": "number"}, {"type": "boolean"}, {"type": "string"}],
                      "example": 23.5},
            "ts": {"oneOf": [{"type": "string"}, {"type": "number"}], "example": TIME_EXAMPLE,
                   "description": "ISO 8601 with a zone or epoch milliseconds; default: "
                                  "arrival time. With a ts, a reading sent twice is stored once."},
            "unit": {"type": "string", "example": "°C"}}},
    "NewReadings": {"type": "object", "required": ["readings"], "additionalProperties": False,
                    "properties": {"readings": {"type": "array", "minItems": 1,
                                                "maxItems": MAX_READINGS,
                                                "items": ref("NewReading")}}},
}


def error(description):
    return {"description": description,
            "content": {"application/json": {"schema": ref("Error")}}}


def ok(schema_name, description):
    return {"description": description,
            "content": {"application/json": {"schema": ref(schema_name)}}}


def wrapped(key, schema_name, description):
    """A 200 answer of the form {key: [schema_name, ...]}."""
    schema = obj({key: {"type": "array", "items": ref(schema_name)}})
    return {"description": description, "content": {"application/json": {"schema": schema}}}


COMMON_ERRORS = {"401": error("No session and no API key, or an unknown or revoked key"),
                 "403": error("The key lacks the scope, or is restricted to another site")}
BAD_INPUT = {"400": error("A parameter is missing or malformed; the message says which")}
NOT_FOUND = {"404": error("Nothing stored matches")}


def get(summary, parameters, answer, *errors):
    responses = {"200": answer, **COMMON_ERRORS}
    for more in errors:
        responses.update(more)
    return {"get": {"summary": summary, "parameters": parameters, "responses": responses}}


PATHS = {
    "/api/v1/devices": get("Every device, its status and its attributes' last values", [],
                           wrapped("devices", "Device", "The devices")),
    "/api/v1/attributes": get("The attributes a topic filter matches", [PATTERN],
                              wrapped("attributes", "Attribute", "The attributes"), BAD_INPUT),
    "/api/v1/latest": get("The last value of each attribute a topic filter matches", [PATTERN],
                          wrapped("readings", "Reading", "The last readings"), BAD_INPUT),
    "/api/v1/history": get(
        "One attribute over a time range, raw or per minute / hour (mean, min, max, n)",
        [param("topic", "site/room/device/attribute", required=True, minLength=1,
               example="oficina/servidores/servidor1/temperatura"), FROM, TO,
         param("resolution", "auto picks raw up to 2 h, minute up to 7 days, hour beyond. "
               "raw: at most 2 days; minute: at most 31 days.",
               enum=["auto", "raw", "minute", "hour"], default="auto")],
        ok("History", "The points, oldest first"), BAD_INPUT, NOT_FOUND),
    "/api/v1/aggregates": get(
        "Per-minute mean, min, max and count over several devices, with the devices that "
        "had the min and the max (at most 31 days; a filter that is not a whole site, a "
        "whole room or every device reads each device's minutes: at most 10,080,000 of "
        "them per call)", [DEVICES, ATTRIBUTE, FROM, TO],
        ok("Aggregates", "One row per minute that has readings"), BAD_INPUT, NOT_FOUND),
    "/api/v1/export.csv": get(
        "CSV file, streamed. raw (pattern, at most 366 days): time,site,room,device,"
        "attribute,value,unit. aggregate (devices + attribute, at most 31 days): minute,"
        "mean,min,max,count,min_device,max_device. Times ISO 8601 in `tz`.",
        [param("kind", "raw readings or per-minute aggregates", enum=["raw", "aggregate"],
               default="raw"),
         # each kind reads only its own parameters: no minLength on them here, as the
         # other kind does not look at them
         param("pattern", "kind=raw: " + PATTERN["description"], default="#",
               example="oficina/#"),
         param("devices", "kind=aggregate: " + DEVICES["description"], default="#"),
         param("attribute", "kind=aggregate (required there): one attribute name"), FROM, TO,
         param("tz", "IANA time zone of the times in the file", default="UTC",
               example="Europe/Lisbon")],
        {"description": "The CSV file (Content-Disposition: attachment)",
         "content": {"text/csv": {"schema": {"type": "string"}}}}, BAD_INPUT, NOT_FOUND),
    "/api/v1/rejects": get(
        "The messages the ingest refused (wrong topic, unreadable payload, ...), newest "
        "first, with the reason and the payload; a page at a time",
        [param("topic", "MQTT topic filter over the rejects' topics, of any depth: names, "
               "`+` for one level, `#` (last) for the rest", minLength=1, default="#",
               example="planta/#"),
         BEFORE, LIMIT],
        ok("Rejects", "The page"), BAD_INPUT),
    "/api/v1/alerts": get(
        "Alerts, newest first, a page at a time: by default those needing attention (open, "
        "or cleared and not acknowledged), as the portal's Alerts page lists them",
        [param("state", "attention: open, or cleared and not acknowledged; open: not "
               "cleared; all", enum=list(ALERT_STATES), default="attention"),
         PATTERN, BEFORE, LIMIT],
        ok("Alerts", "The page"), BAD_INPUT),
    "/api/v1/alerts/{alert_id}": get(
        "One alert and its history: raised, notified, acknowledged, cleared...",
        [ALERT_ID], ok("AlertHistory", "The alert and its events, oldest first"), NOT_FOUND),
    "/api/v1/alerts/{alert_id}/ack": {"post": {
        "summary": "Acknowledge an alert (scope write; in the portal, operators and admins), "
                   "recorded as 'API key <name>' or the user's name. Once: a second call "
                   "changes nothing",
        "parameters": [ALERT_ID],
        "responses": {"200": ok("Acknowledged", "The alert as it is now"), **COMMON_ERRORS,
                      **NOT_FOUND}}},
    "/api/v1/readings": {"post": {
        "summary": "Send readings (scope write): each is published to MQTT at QoS 1, and "
                   "the ingest validates and stores it as a device's (or records a reject)",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "oneOf": [ref("NewReading"), ref("NewReadings")]}}}},
        "responses": {
            "202": {"description": "The broker has every reading",
                    "content": {"application/json": {"schema": obj(
                        {"accepted": {"type": "integer"}})}}},
            **BAD_INPUT, **COMMON_ERRORS,
            "413": error("The body is larger than 1 MiB"),
            "415": error("The body is not JSON"),
            "503": error("The broker is unreachable or did not confirm in time")}}},
}


def document():
    """The whole OpenAPI document."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "Octopus REST API", "version": "1",
                 "description": "Devices, history, aggregates, CSV export, rejects, alerts "
                                "and HTTP ingest. Keys: portal page /keys (admins). More: "
                                "doc/api.md."},
        "paths": PATHS,
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "bearerKey": {"type": "http", "scheme": "bearer",
                          "description": "An API key: Authorization: Bearer oct_..."},
            "headerKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "portalSession": {"type": "apiKey", "in": "cookie", "name": "session",
                              "description": "A logged-in portal session; writes then need "
                                             "the X-CSRFToken header"}}},
        "security": [{"bearerKey": []}, {"headerKey": []}, {"portalSession": []}],
    }


@bp.get("/openapi.json")
def openapi_json():
    """This API's OpenAPI document."""
    return jsonify(document())
