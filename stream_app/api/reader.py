"""The stateless HTTP stats reader (contract §4, §4.1): auth, period, one Redis round
trip — or none, when the change notifications say the answer cannot have changed.

Invariants: a token only ever sees its own environment; tokens are compared in
constant time and never logged or echoed; bad input is a 4xx JSON error, never a 500
or a stack trace; any range of up to 366 days costs at most one Redis round trip; a
cached answer is never stale (:mod:`.changes`).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiohttp import web
from aiohttp.log import access_logger
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from pydantic import BaseModel

from stream_app.api import protocol_errors
from stream_app.api.change_feed import AnswerCache, ChangeFeed
from stream_app.api.live import HEADERS, Answer, LiveStream
from stream_app.api.openapi import SPEC
from stream_app.api.responses import (
    AGENT_LIVE_PATH,
    AGENT_STATS_PATH,
    CALL_PATH,
    DASHBOARD_PATH,
    LIVE_PATH,
    SCHEMA_PATH,
    SCHEMAS_PATH,
    STATS_PATH,
    ApiError,
    ErrorResponse,
    Period,
    StatsResponse,
    explain,
    resolve_period,
    stats_response,
)
from stream_app.core.domain import jsonbytes
from stream_app.core.domain.published import SCHEMAS, schema_document
from stream_app.core.outages import redis_away
from stream_app.core.store.counters import CounterStore, Stats
from stream_app.loops import use_event_loop
from stream_app.observe import tracing
from stream_app.settings import Settings

logger = logging.getLogger(__name__)

METRICS = CollectorRegistry()
"""The reader's own metrics, and its process's: its ``/metrics`` lists these only (the
worker's are defined in ``observe/metrics`` on the default registry, and would show here
as zeros)."""
for collector in (ProcessCollector, PlatformCollector, GCCollector):
    collector(registry=METRICS)
REQUESTS = Counter("callback_stats_reader_requests_total", "Stats requests by status.",
                   ["status"], registry=METRICS)
LIVE_STREAMS = Gauge("callback_stats_reader_live_streams", "Open live stats streams.",
                     registry=METRICS)
LATENCY = Histogram("callback_stats_reader_request_seconds", "Stats request latency.",
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
                    registry=METRICS)
SERVER = "callback-stats"
"""The ``Server`` header: no versions of Python or aiohttp for a scanner to match."""


QUERY_PARAMETERS = ("start_date", "end_date")
API_PATHS = frozenset({STATS_PATH, AGENT_STATS_PATH, LIVE_PATH, AGENT_LIVE_PATH, CALL_PATH})
DASHBOARD_FILES = Path(__file__).parent / "dashboard"
UNAVAILABLE = orjson.dumps({"success": False, "message": "the counter store is unavailable",
                            "code": "UNAVAILABLE"})


def date_parameters(request: web.Request) -> tuple[str | None, str | None]:
    """``start_date`` and ``end_date`` as sent, each at most once. Any other parameter is
    refused rather than ignored: a typo such as ``start=`` would otherwise answer for the
    default period as if it were the one asked for."""
    try:
        # Every pair, repeats included: multidict 7 lists a repeated name once in keys().
        names = [name for name, _ in request.query.items()]
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


async def fetch_stats(store: CounterStore, environment: str, period: Period,
                      callback_agent_id: str | None = None) -> StatsResponse:
    return stats_response(await read_counters(store, environment, period, callback_agent_id),
                          period)


async def read_counters(store: CounterStore, environment: str, period: Period,
                        callback_agent_id: str | None) -> Stats:
    if callback_agent_id is not None and not _storable(callback_agent_id):
        return Stats()  # no such agent can exist: zeros
    return await store.read_range(environment, period.start, period.end, callback_agent_id)


def _storable(text: str) -> bool:
    """Whether ``text`` can name a key (an id from a path may hold undecodable bytes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(model.model_dump(mode="json")), status=status,
                        content_type="application/json")


def _error(status: int, code: str, message: str) -> web.Response:
    return _json(ErrorResponse(message=message, code=code), status)


Clock = Callable[[], datetime]


class Reader:
    """The handlers; holds the settings, the counter store and what the change
    notifications allow it to remember (:mod:`.changes`), nothing per request."""

    def __init__(self, settings: Settings, store: CounterStore, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.cache: AnswerCache[Answer] = AnswerCache()
        self.feed = ChangeFeed(store.redis, settings.tokens.values(), self.cache)
        self.closing = asyncio.Event()

    def _question(self, request: web.Request) -> tuple[str, str | None, Period]:
        """Environment (from the token), callback agent (from the path, if any), period."""
        environment = environment_for(request.headers.get("Authorization"),
                                      self.settings.tokens)
        start, end = date_parameters(request)
        return environment, request.match_info.get("agent_id"), self._period(start, end)

    def _period(self, start: str | None, end: str | None) -> Period:
        return resolve_period(start, end, self.clock().astimezone(self.settings.zone).date())

    async def answer(self, environment: str, agent: str | None, period: Period) -> Answer:
        async def load() -> Answer:
            stats = await read_counters(self.store, environment, period, agent)
            body = stats_response(stats, period).model_dump(mode="json")
            return Answer(jsonbytes.dumps(body), stats.version)
        return await self.cache.get(environment, (agent, period.start, period.end), load)

    async def stats(self, request: web.Request) -> web.Response:
        answer = await self.answer(*self._question(request))
        return web.Response(body=answer.body, content_type="application/json")

    async def live(self, request: web.Request) -> web.StreamResponse:
        environment, agent, period = self._question(request)  # errors before streaming
        defaults = ("start_date" not in request.query, "end_date" not in request.query)

        async def read() -> Answer:
            asked = period if not any(defaults) else self._period(
                request.query.get("start_date"), request.query.get("end_date"))
            return await self.answer(environment, agent, asked)  # today moves at midnight

        response = web.StreamResponse(headers=HEADERS)
        await response.prepare(request)
        await LiveStream(response, self.feed, environment, read, redis_away, UNAVAILABLE,
                         self.closing).run(request.headers.get("Last-Event-ID"))
        return response

    async def callback(self, request: web.Request) -> web.Response:
        environment = environment_for(request.headers.get("Authorization"),
                                      self.settings.tokens)
        if request.query:
            raise ApiError(400, "INVALID_QUERY", "this endpoint takes no query parameters")
        call_id = request.match_info["call_id"]
        record = (await self.store.call_record(environment, call_id)
                  if _storable(call_id) else None)
        if record is None:
            raise ApiError(404, "NOT_FOUND", "no such callback in this environment (unknown, "
                           "or its record expired after STREAM_APP_DEDUP_TTL_SECONDS)")
        return _json(explain(call_id, record))

    async def dashboard(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(DASHBOARD_FILES / "index.html", headers=DASHBOARD_HEADERS)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        try:
            await self.store.redis.ping()
        except Exception as exc:
            if not redis_away(exc):
                raise
            return web.json_response({"status": "redis unreachable"}, status=503)
        return web.json_response({"status": "ready"})

    async def metrics(self, request: web.Request) -> web.Response:
        LIVE_STREAMS.set(self.feed.streams())
        return web.Response(body=generate_latest(METRICS),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(SPEC)

    async def schemas(self, request: web.Request) -> web.Response:
        """Every published record kind: its schema id, topic and where its schema is."""
        topics = {"callback-outcomes": self.settings.topic_outcomes,
                  "callback-stats": self.settings.topic_stats,
                  "callback-events-dlq": self.settings.topic_dlq}
        return web.json_response({"schemas": [
            {"id": str(s), "topic": topics[s.name.split(".")[0]],
             "url": f"{SCHEMAS_PATH}/{s}.json"} for s in SCHEMAS]})

    async def schema(self, request: web.Request) -> web.Response:
        name = request.match_info["name"].removesuffix(".json")
        found = next((s for s in SCHEMAS if str(s) == name), None)
        if found is None:
            raise ApiError(404, "NOT_FOUND", "no such schema (GET /schemas lists them)")
        return web.json_response(schema_document(found), content_type=SCHEMA_CONTENT_TYPE)


SCHEMA_CONTENT_TYPE = "application/schema+json"

DASHBOARD_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache"}


READER = web.AppKey("reader", Reader)
"""The app's :class:`Reader` (tests and benchmarks look at its cache and feed)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def traced(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One server span per request (``observe/tracing.py``), named by its route: never
    by the path's values or the query, and no header but ``traceparent`` is read."""
    if not tracing.enabled():
        return await handler(request)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    with tracing.server_span(f"{request.method} {route}", request.headers.get("traceparent"),
                             {"http.request.method": request.method,
                              "http.route": route}) as span:
        response = await handler(request)
        span.set_attribute("http.response.status_code", response.status)
        return response


def _failure(request: web.Request, exc: Exception) -> web.Response:
    """503 when Redis is away (``core/outages.py`` decides), else 500."""
    if redis_away(exc):
        logger.warning("Redis unavailable while serving %s", request.path)
        return _error(503, "UNAVAILABLE", "the counter store is unavailable")
    # Type and place only: an exception's text may quote request bytes (a token).
    route = request.match_info.route.resource
    logger.error("unexpected %s serving %s at %s", type(exc).__name__,
                 route.canonical if route else "a route", _where(exc))
    return _error(500, "INTERNAL_ERROR", "internal error")


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
    except Exception as exc:
        response = _failure(request, exc)
    resource = request.match_info.route.resource
    if resource is not None and resource.canonical in API_PATHS:
        REQUESTS.labels(str(response.status)).inc()
        if resource.canonical not in (LIVE_PATH, AGENT_LIVE_PATH):
            LATENCY.observe(time.perf_counter() - started)
    return response


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"


def create_reader(settings: Settings, store: CounterStore,
                  clock: Clock = lambda: datetime.now(UTC)) -> web.Application:
    protocol_errors.install()
    reader = Reader(settings, store, clock)
    app = web.Application(middlewares=[traced, json_errors])
    app.router.add_get(STATS_PATH, reader.stats)
    app.router.add_get(LIVE_PATH, reader.live)
    app.router.add_get(AGENT_LIVE_PATH, reader.live)
    app.router.add_get(AGENT_STATS_PATH, reader.stats)
    app.router.add_get(CALL_PATH, reader.callback)
    app.router.add_get(DASHBOARD_PATH, reader.dashboard)
    app.router.add_static(f"{DASHBOARD_PATH}/static", DASHBOARD_FILES / "static")
    app.router.add_get("/healthz", reader.healthz)
    app.router.add_get("/readyz", reader.readyz)
    app.router.add_get("/metrics", reader.metrics)
    app.router.add_get("/openapi.json", reader.openapi)
    app.router.add_get(SCHEMAS_PATH, reader.schemas)
    app.router.add_get(SCHEMA_PATH, reader.schema)

    async def follow_changes(_: web.Application) -> None:
        reader.feed.start()

    async def end_streams(_: web.Application) -> None:
        reader.closing.set()
        await reader.feed.stop()  # wakes every stream, which sees ``closing`` and ends

    async def close_store(_: web.Application) -> None:
        await store.close()

    async def plain_server_header(_: web.Request, response: web.StreamResponse) -> None:
        response.headers["Server"] = SERVER

    app.on_response_prepare.append(plain_server_header)
    app.on_startup.append(follow_changes)
    app.on_shutdown.append(end_streams)
    app.on_cleanup.append(close_store)
    app[READER] = reader
    return app


def run_reader(settings: Settings, access_log: bool = False) -> None:
    """Serve until stopped. Per-request access log lines are off unless asked for: at
    thousands of requests a second they cost more than the request (the Prometheus
    metrics count and time every request); they never contain the token."""
    use_event_loop(settings.event_loop)
    store = CounterStore.from_settings(settings)
    logger.info("stats reader on %s:%s (%d tokens configured)", settings.reader_bind,
                settings.reader_port, len(settings.tokens))
    web.run_app(create_reader(settings, store), host=settings.reader_bind,
                port=settings.reader_port, print=None,
                access_log=access_logger if access_log else None)


