"""The stats endpoint's answers (contract §4): the period rules, the body, the errors.

Pure: no aiohttp, no Redis. The OpenAPI document is generated from these models.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel

from stream_app.core.counters import Stats

STATS_PATH = "/api/v1/callback-agents/stats"
MAX_DAYS = 366
DEFAULT_LOOKBACK_DAYS = 30
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Period(BaseModel):
    start: date
    end: date


class SourceAgentCount(BaseModel):
    source_agent_id: str
    name: str | None
    count: int


class StatsData(BaseModel):
    period: Period
    total_callbacks_received: int
    callbacks_answered: int
    callbacks_unmatched: int
    callbacks_by_source_agent: list[SourceAgentCount]


class StatsResponse(BaseModel):
    success: Literal[True] = True
    data: StatsData


class ErrorResponse(BaseModel):
    success: Literal[False] = False
    message: str
    code: str


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def resolve_period(start_raw: str | None, end_raw: str | None, today: date) -> Period:
    """Both dates inclusive; defaults today-30 .. today; at most 366 days."""
    end = _parse_date("end_date", end_raw) if end_raw is not None else today
    start = (_parse_date("start_date", start_raw) if start_raw is not None
             else today - timedelta(days=DEFAULT_LOOKBACK_DAYS))
    if start > end:
        raise ApiError(400, "INVALID_DATE_RANGE", "start_date is after end_date")
    if (end - start).days + 1 > MAX_DAYS:
        raise ApiError(400, "DATE_RANGE_TOO_LARGE",
                       f"the period may cover at most {MAX_DAYS} days")
    return Period(start=start, end=end)


def _parse_date(name: str, raw: str) -> date:
    try:
        if _DATE.match(raw):
            return date.fromisoformat(raw)
    except ValueError:
        pass
    raise ApiError(400, "INVALID_DATE", f"{name} must be a real date in YYYY-MM-DD form")


def stats_response(stats: Stats, period: Period) -> StatsResponse:
    rows = [SourceAgentCount(source_agent_id=a, name=n, count=c)
            for a, n, c in stats.sorted_sources()]
    return StatsResponse(data=StatsData(
        period=period, total_callbacks_received=stats.received,
        callbacks_answered=stats.answered, callbacks_unmatched=stats.unmatched,
        callbacks_by_source_agent=rows))
