"""The reader's paths and answers (contract §4, §4.1): the period rules, the bodies,
the errors, the explanation of one callback.

Pure: no aiohttp, no Redis. The reader serves these models and the OpenAPI document is
generated from them; neither imports the other.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from stream_app.core.store.codecs import CallRecord
from stream_app.core.store.counters import Stats

STATS_PATH = "/api/v1/callback-agents/stats"
AGENT_STATS_PATH = "/api/v1/callback-agents/{agent_id}/stats"
LIVE_PATH = "/api/v1/callback-agents/stats/live"
AGENT_LIVE_PATH = "/api/v1/callback-agents/{agent_id}/stats/live"
CALL_PATH = "/api/v1/callbacks/{call_id}"
DASHBOARD_PATH = "/dashboard"
SCHEMAS_PATH = "/schemas"
SCHEMA_PATH = "/schemas/{name}"
"""The JSON Schemas of the published records (``core/domain/published.py``): no token needed."""
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


Outcome = Literal["matched", "unmatched", "pending"]


class CallExplanation(BaseModel):
    """Why a callback counted as it did: what the worker stored with its decision."""

    call_id: str
    day: str
    """The calendar day (configured zone) all of the call's counters went to."""
    time: datetime
    """The call's time: its ``received`` event's, else its earliest event's."""
    answered: bool
    callback_agent_id: str | None
    """The agent of the call's earliest record: the one the call counts for."""
    decision: Outcome
    """``pending`` until the worker decided it (grace period not yet over)."""
    source_agent_id: str | None
    source_call_id: str | None
    """The outbound call that earned the callback (``matched`` only)."""
    late: bool | None
    """Decided while far behind the newest callback (beyond the allowed lateness)."""
    cutoff: datetime | None
    """Records with a timestamp up to here took part in the decision."""


class CallResponse(BaseModel):
    success: Literal[True] = True
    data: CallExplanation


def _instant(value: str | None) -> datetime | None:
    return None if not value else datetime.fromtimestamp(float(value), UTC)


def explain(call_id: str, record: CallRecord) -> CallResponse:
    """The explanation of a stored call record (:class:`CallRecord`). A record written
    before the decision kept its cutoff has ``cutoff`` and ``late`` null."""
    outcome: Outcome = "matched" if record.o == "matched" else \
        "unmatched" if record.o == "unmatched" else "pending"
    decided = outcome != "pending"
    return CallResponse(data=CallExplanation(
        call_id=call_id, day=record.d,
        time=datetime.fromtimestamp(float(record.r or record.e), UTC),
        answered=record.a == "1",
        callback_agent_id=record.g or record.oa or None,
        decision=outcome,
        source_agent_id=(record.s or None) if decided else None,
        source_call_id=(record.sc or None) if decided else None,
        late=(record.lt == "1") if decided and record.lt is not None else None,
        cutoff=_instant(record.cu) if decided else None))
