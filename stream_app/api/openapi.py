"""The OpenAPI description of the stats endpoint, generated from the response models."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from stream_app import __version__
from stream_app.api.responses import STATS_PATH, ErrorResponse, StatsResponse

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
                                  (ErrorResponse, "serialization")],
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
    return {
        "openapi": "3.1.0",
        "info": {"title": "callback-stats reader", "version": __version__},
        "paths": {STATS_PATH: {"get": operation}},
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


SPEC = _build()
