"""The reader's figures: a year of counters, concurrent clients."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import date, timedelta
from urllib.parse import urlsplit

from stream_app.core.domain.matching import UNMATCHED, Decision
from stream_app.core.store.counters import ClassifyWrite, CounterStore, InboundWrite
from stream_app.dev.bench.measure import Progress, percentiles

READER_START = date(2023, 1, 1)


async def populate_year(store: CounterStore, env: str, calls_per_day: int = 20) -> None:
    for offset in range(366):
        day = READER_START + timedelta(days=offset)
        t = time.mktime(day.timetuple()) + 3600
        await store.record_inbound([InboundWrite(env, f"{day}-{i}", "received", t,
                                                 day.isoformat(), f"e{i}")
                                    for i in range(calls_per_day)])
        await store.classify([ClassifyWrite(env, f"{day}-{i}",
                                            UNMATCHED if i % 5 == 0 else
                                            Decision(f"agent-{i % 7}", f"out-{i}"),
                                            day.isoformat(), "cb")
                              for i in range(calls_per_day)])


async def reader_load(base_url: str, token: str, clients: int, seconds: float,
                      progress: Progress, distinct: int = 1,
                      new_connection: bool = False) -> dict[str, float]:
    """``clients`` keep-alive connections, each sending the next request as soon as the
    last answer is read, for ``seconds``. ``distinct`` > 1 cycles through that many
    366-day ranges (each starting a day later): more questions than the reader's answer
    cache keeps, so nearly every request reads Redis (the uncached cost).
    ``new_connection``: each request on a connection of its own (``Connection: close``),
    timed from the connect, as a client without keep-alive sends them.

    Each client is a bare HTTP/1.1 exchange on asyncio streams: a general-purpose client
    (aiohttp's) spends about as much CPU per request as the reader, so on a two-core
    machine the figure would mostly measure the load generator."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    close = "Connection: close\r\n" if new_connection else ""
    requests = [(f"GET {parts.path}?start_date={READER_START + timedelta(days=i)}"
                 f"&end_date={READER_START + timedelta(days=365 + i)} HTTP/1.1\r\n"
                 f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n{close}\r\n"
                 ).encode() for i in range(distinct)]
    samples: list[float] = []
    deadline = time.monotonic() + seconds

    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(requests[len(samples) % distinct])
        head = await reader.readuntil(b"\r\n\r\n")
        length = _CONTENT_LENGTH.search(head)
        await reader.readexactly(int(length.group(1)) if length else 0)
        if head[9:12] != b"200":
            raise RuntimeError(f"bench: the reader answered {head[:12]!r}")

    async def client() -> None:
        if new_connection:
            while time.monotonic() < deadline:
                began = time.perf_counter()
                reader, writer = await asyncio.open_connection(host, port)
                try:
                    await exchange(reader, writer)
                finally:
                    writer.close()
                samples.append(time.perf_counter() - began)
            return
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.monotonic() < deadline:
                began = time.perf_counter()
                await exchange(reader, writer)
                samples.append(time.perf_counter() - began)
        finally:
            writer.close()

    async def report() -> None:
        while True:
            progress("reader, 366-day range", seconds - (deadline - time.monotonic()), seconds)
            await asyncio.sleep(0.2)

    began = time.perf_counter()
    reporting = asyncio.create_task(report())
    try:
        await asyncio.gather(*(client() for _ in range(clients)))
    finally:
        reporting.cancel()
    return {"clients": clients, "requests": len(samples), "new_connection": new_connection,
            "requests_per_second": len(samples) / (time.perf_counter() - began),
            **percentiles(samples)}


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


# -- the run --------------------------------------------------------------------------------
