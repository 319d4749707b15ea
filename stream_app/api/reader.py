"""The stateless HTTP stats reader (contract §4): auth, period, one Redis round trip.

Invariants: a token only ever sees its own environment; tokens are compared in
constant time and never logged or echoed; bad input is a 4xx JSON error, never a 500
or a stack trace; any range of up to 366 days costs one Redis round trip.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import orjson
from aiohttp import web, web_server
from aiohttp.log import access_logger
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pydantic import BaseModel
from redis.exceptions import RedisError

from stream_app.core.counters import CounterStore, Stats
from stream_app.loops import use_event_loop
from stream_app.settings import Settings

logger = logging.getLogger(__name__)

STATS_PATH = "/api/v1/callback-agents/stats"
MAX_DAYS = 366
DEFAULT_LOOKBACK_DAYS = 30
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

REQUESTS = Counter("callback_stats_reader_requests_total", "Stats requests by status.",
                   ["status"])
LATENCY = Histogram("callback_stats_reader_request_seconds", "Stats request latency.",
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))


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


QUERY_PARAMETERS = ("start_date", "end_date")


def date_parameters(request: web.Request) -> tuple[str | None, str | None]:
    """``start_date`` and ``end_date`` as sent, each at most once. Any other parameter is
    refused rather than ignored: a typo such as ``start=`` would otherwise answer for the
    default period as if it were the one asked for."""
    try:
        names = list(request.query.keys())
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "INVALID_QUERY", "the query string cannot be decoded") from None
    unknown = sorted({n for n in names if n not in QUERY_PARAMETERS})
    if unknown:
        raise ApiError(400, "INVALID_QUERY", "unknown query parameter; this endpoint takes "
                       "start_date and end_date only")
    if len(names) != len(set(names)):
        raise ApiError(400, "INVALID_QUERY", "a query parameter is given more than once")
    return request.query.get("start_date"), request.query.get("end_date")


def environment_for(header: str | None, tokens: dict[str, str]) -> str:
    """The environment a bearer token names; every token is compared, in constant time."""
    scheme, _, presented = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise ApiError(401, "UNAUTHORIZED", "missing or malformed bearer token")
    # Any bytes may arrive (aiohttp hands undecodable ones over as surrogates): compare
    # bytes, so no token can make the comparison itself fail.
    candidate = presented.strip().encode("utf-8", "surrogateescape")
    found: str | None = None
    for token, environment in tokens.items():
        if hmac.compare_digest(candidate, token.encode("utf-8", "surrogateescape")):
            found = environment
    if found is None:
        raise ApiError(401, "UNAUTHORIZED", "unknown token")
    return found


def stats_response(stats: Stats, period: Period) -> StatsResponse:
    rows = [SourceAgentCount(source_agent_id=a, name=n, count=c)
            for a, n, c in stats.sorted_sources()]
    return StatsResponse(data=StatsData(
        period=period, total_callbacks_received=stats.received,
        callbacks_answered=stats.answered, callbacks_unmatched=stats.unmatched,
        callbacks_by_source_agent=rows))


async def fetch_stats(store: CounterStore, environment: str, period: Period) -> StatsResponse:
    return stats_response(await store.read_range(environment, period.start, period.end),
                          period)


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(model.model_dump(mode="json")), status=status,
                        content_type="application/json")


def _error(status: int, code: str, message: str) -> web.Response:
    return _json(ErrorResponse(message=message, code=code), status)


Clock = Callable[[], datetime]


class Reader:
    """The handlers; holds the settings and the counter store, nothing per request."""

    def __init__(self, settings: Settings, store: CounterStore, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock

    async def stats(self, request: web.Request) -> web.Response:
        environment = environment_for(request.headers.get("Authorization"),
                                      self.settings.tokens)
        today = self.clock().astimezone(self.settings.zone).date()
        start, end = date_parameters(request)
        return _json(await fetch_stats(self.store, environment,
                                       resolve_period(start, end, today)))

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        try:
            await self.store.redis.ping()
        except (RedisError, OSError):
            return web.json_response({"status": "redis unreachable"}, status=503)
        return web.json_response({"status": "ready"})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def openapi(self, request: web.Request) -> web.Response:
        from stream_app.api.openapi import SPEC

        return web.json_response(SPEC)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes the contract's JSON error; nothing leaks a trace."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except ApiError as exc:
        response = _error(exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status, "HTTP_ERROR")
        response = _error(exc.status, code, exc.reason)
        if "Allow" in exc.headers:  # a 405 names the methods the path takes (RFC 9110)
            response.headers["Allow"] = exc.headers["Allow"]
    except (RedisError, OSError):
        logger.warning("Redis unavailable while serving %s", request.path)
        response = _error(503, "UNAVAILABLE", "the counter store is unavailable")
    except Exception as exc:
        # Type and place only: an exception's text may quote request bytes (a token).
        logger.error("unexpected %s serving %s at %s", type(exc).__name__, STATS_PATH
                     if request.path == STATS_PATH else "a route", _where(exc))
        response = _error(500, "INTERNAL_ERROR", "internal error")
    if request.path == STATS_PATH:
        REQUESTS.labels(str(response.status)).inc()
        LATENCY.observe(time.perf_counter() - started)
    return response


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"


class _JsonProtocolErrors(RequestHandler):
    """aiohttp's own error responses (requests its HTTP parser rejects: an over-long or
    NUL-bearing header, a bad request line) as the contract's JSON error.

    aiohttp answers those before any handler or middleware runs, in plain text, and logs
    the parser's exception, whose text can quote the offending header (a token). This
    answers JSON and logs only the status and the exception's type.
    """

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> StreamResponse:
        logger.warning("rejected a request aiohttp could not parse: HTTP %d (%s)", status,
                       type(exc).__name__ if exc is not None else "no exception")
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send the error")
        code = "BAD_REQUEST" if 400 <= status < 500 else "INTERNAL_ERROR"
        text = "malformed HTTP request" if code == "BAD_REQUEST" else "internal error"
        response = _error(status, code, text)
        response.force_close()
        return response


def json_protocol_errors() -> None:
    """Make aiohttp's server build :class:`_JsonProtocolErrors` handlers (idempotent)."""
    web_server.RequestHandler = _JsonProtocolErrors  # type: ignore[attr-defined]


def create_reader(settings: Settings, store: CounterStore,
                  clock: Clock = lambda: datetime.now(UTC)) -> web.Application:
    json_protocol_errors()
    reader = Reader(settings, store, clock)
    app = web.Application(middlewares=[json_errors])
    app.router.add_get(STATS_PATH, reader.stats)
    app.router.add_get("/healthz", reader.healthz)
    app.router.add_get("/readyz", reader.readyz)
    app.router.add_get("/metrics", reader.metrics)
    app.router.add_get("/openapi.json", reader.openapi)

    async def close_store(_: web.Application) -> None:
        await store.close()

    app.on_cleanup.append(close_store)
    return app


def run_reader(settings: Settings, access_log: bool = False) -> None:
    """Serve until stopped. Per-request access log lines are off unless asked for: at
    thousands of requests a second they cost more than the request (the Prometheus
    metrics count and time every request); they never contain the token."""
    use_event_loop(settings.event_loop)
    store = CounterStore.from_url(settings.redis_url, settings.dedup_ttl_seconds)
    logger.info("stats reader on %s:%s (%d tokens configured)", settings.reader_bind,
                settings.reader_port, len(settings.tokens))
    web.run_app(create_reader(settings, store), host=settings.reader_bind,
                port=settings.reader_port, print=None,
                access_log=access_logger if access_log else None)


