"""The OpenAPI description of the reader's endpoints, generated from the response models
(``responses.py``, which holds the paths too)."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from stream_app import __version__
from stream_app.api.responses import (
    AGENT_LIVE_PATH,
    AGENT_STATS_PATH,
    CALL_PATH,
    LIVE_PATH,
    SCHEMA_PATH,
    SCHEMAS_PATH,
    STATS_PATH,
    CallResponse,
    ErrorResponse,
    StatsResponse,
)
from stream_app.core.domain.published import SCHEMAS, schema_document

ERRORS = {
    "400": ("Bad dates: INVALID_DATE, INVALID_DATE_RANGE or DATE_RANGE_TOO_LARGE (rules "
            "across both dates, and against today's date, that a JSON schema cannot state); "
            "INVALID_QUERY for a query string that is not UTF-8, a parameter given twice or one "
            "this endpoint does not take",
            ["INVALID_DATE", "INVALID_DATE_RANGE", "DATE_RANGE_TOO_LARGE", "INVALID_QUERY"]),
    "401": ("Missing, malformed or unknown token", ["UNAUTHORIZED"]),
    "503": ("The counter store is unavailable", ["UNAVAILABLE"]),
}


def _build() -> dict[str, Any]:
    _, defs = models_json_schema([(StatsResponse, "serialization"),
                                  (ErrorResponse, "serialization"),
                                  (CallResponse, "serialization")],
                                 ref_template="#/components/schemas/{model}")
    schemas = defs["$defs"]

    def error(description: str, codes: list[str]) -> dict[str, Any]:
        schema = {"allOf": [{"$ref": "#/components/schemas/ErrorResponse"},
                            {"properties": {"code": {"enum": codes}}}]}
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    date_param = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$",
                  "minLength": 10, "maxLength": 10}
    operation = {
        "summary": "Callback statistics of the token's environment",
        "security": [{"bearer": []}],
        "parameters": [
            {"name": "start_date", "in": "query", "required": False, "schema": date_param,
             "description": (
                 "Inclusive, a real calendar date (0001-01-01 to 9999-12-31). Default: "
                 "today minus 30 days (configured time zone). Must not be after end_date "
                 "(whose default is today), else 400 INVALID_DATE_RANGE; the period covers "
                 "at most 366 days, else 400 DATE_RANGE_TOO_LARGE.")},
            {"name": "end_date", "in": "query", "required": False, "schema": date_param,
             "description": "Inclusive, a real calendar date (0001-01-01 to 9999-12-31). "
                            "Default: today (configured time zone)."},
        ],
        "responses": {
            "200": {"description": "Counters summed over the period",
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/StatsResponse"}}}},
            **{status: error(*spec) for status, spec in ERRORS.items()},
        },
    }
    agent_param = {"name": "agent_id", "in": "path", "required": True,
                   "schema": {"type": "string"},
                   "description": "A callback agent id; one never seen gives zeros."}
    per_agent = {**operation, "summary": "Callback statistics of one callback agent (the "
                 "agent of each call's earliest record) in the token's environment",
                 "parameters": [agent_param, *operation["parameters"]]}
    stream = {"description": (
        "text/event-stream. Each event's `data` is exactly the stats endpoint's 200 body "
        "(StatsResponse) and its `id` the environment's change version: one at once on "
        "connect (none if `Last-Event-ID` equals the current version: the client has it), "
        "then one within 1 s of any change of those numbers (at most one per 0.5 s), none "
        "while nothing changes; `: keep-alive` comment lines every 15 s. While the counter "
        "store is away: one `event: unavailable` whose data is an ErrorResponse "
        "(UNAVAILABLE); the stream stays open and resumes when it is back."),
        "content": {"text/event-stream": {"schema": {"type": "string"},
                                          "itemSchema": {"$ref":
                                                         "#/components/schemas/StatsResponse"}}}}
    resume = {"name": "Last-Event-ID", "in": "header", "required": False,
              "schema": {"type": "string"}, "description": "The last `id` received."}
    errors = {status: error(*spec) for status, spec in ERRORS.items() if status != "503"}

    def live(base: dict[str, Any]) -> dict[str, Any]:
        return {**base, "summary": base["summary"] + ", live (Server-Sent Events)",
                "parameters": [*base["parameters"], resume],
                "responses": {"200": stream, **errors}}

    explain = {
        "summary": "Why one callback of the token's environment counted as it did",
        "description": "404 while the call is unknown, in another environment, or expired: "
                       "its record lives STREAM_APP_DEDUP_TTL_SECONDS after its last event "
                       "(default 30 days). `decision` is `pending` until the worker decided "
                       "it; `cutoff` and `late` are null then (and for records decided "
                       "before this field existed).",
        "security": [{"bearer": []}],
        "parameters": [{"name": "call_id", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {
            "200": {"description": "The stored decision",
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/CallResponse"}}}},
            "400": error("A query parameter (this endpoint takes none)", ["INVALID_QUERY"]),
            "401": error(*ERRORS["401"]),
            "404": error("Unknown, expired or another environment's", ["NOT_FOUND"]),
            "503": error(*ERRORS["503"]),
        },
    }
    schemas.update({str(s): schema_document(s) for s in SCHEMAS})  # OpenAPI 3.1: JSON Schema
    listing = {
        "summary": "The JSON Schemas of the published records (no token needed)",
        "responses": {"200": {"description": "Each record kind's schema id, topic and URL",
                              "content": {"application/json": {"schema": {
                                  "type": "object", "required": ["schemas"],
                                  "properties": {"schemas": {"type": "array", "items": {
                                      "type": "object", "required": ["id", "topic", "url"],
                                      "properties": {k: {"type": "string"}
                                                     for k in ("id", "topic", "url")}}}}}}}}},
    }
    one = {
        "summary": "One published record kind's JSON Schema (draft 2020-12)",
        "parameters": [{"name": "name", "in": "path", "required": True,
                        "schema": {"enum": [f"{s}.json" for s in SCHEMAS]}}],
        "responses": {
            "200": {"description": "The schema; records name it in their schema-id header",
                    "content": {"application/schema+json": {"schema": {"type": "object"}}}},
            "404": error("No such schema", ["NOT_FOUND"]),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "callback-stats reader", "version": __version__},
        "paths": {STATS_PATH: {"get": operation}, AGENT_STATS_PATH: {"get": per_agent},
                  LIVE_PATH: {"get": live(operation)}, AGENT_LIVE_PATH: {"get": live(per_agent)},
                  CALL_PATH: {"get": explain}, SCHEMAS_PATH: {"get": listing},
                  SCHEMA_PATH: {"get": one}},
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


SPEC = _build()
