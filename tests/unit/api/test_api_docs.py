"""docs/api.md follows the OpenAPI document the reader serves: every path, query
parameter and error code of it is named on the page."""

from __future__ import annotations

import json
import re
from pathlib import Path

from stream_app.api.openapi import SPEC

PAGE = Path(__file__).resolve().parents[3] / "docs" / "api.md"


def test_the_api_page_names_every_path_parameter_and_error_code() -> None:
    page = PAGE.read_text()
    for path, operations in SPEC["paths"].items():
        assert f"`{path}`" in page, path
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                assert f"`{parameter['name']}`" in page, (path, parameter["name"])
    codes = set(re.findall(r"\b(?:UNAUTHORIZED|NOT_FOUND|UNAVAILABLE|INVALID_[A-Z_]+|"
                           r"[A-Z]+_RANGE_[A-Z_]+)\b", json.dumps(SPEC)))
    assert codes >= {"UNAUTHORIZED", "INVALID_DATE", "DATE_RANGE_TOO_LARGE"}
    for code in codes:
        assert f"`{code}`" in page, code
