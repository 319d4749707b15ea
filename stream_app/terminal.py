"""``stream-app stats`` and ``explain``: the reader's answers on the terminal, from the
same code path."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table

from stream_app.api.reader import fetch_stats
from stream_app.api.responses import CallResponse, StatsResponse, explain, resolve_period
from stream_app.core.store.counters import CounterStore
from stream_app.core.store.layout import version_key
from stream_app.settings import Settings


async def read_stats(settings: Settings, environment: str, start: str | None,
                     end: str | None, callback_agent_id: str | None = None) -> StatsResponse:
    """Exactly what ``GET /api/v1/callback-agents/stats`` (or ``/{agent}/stats``)
    returns for ``environment``."""
    period = resolve_period(start, end, datetime.now(settings.zone).date())
    async with CounterStore.from_settings(settings) as store:
        if not await store.redis.exists(version_key(environment)):
            raise UnknownEnvironment(
                f"no counters were ever written for environment {environment!r} in the "
                f"Redis at STREAM_APP_REDIS_URL: check the name (the HTTP API answers zeros)")
        return await fetch_stats(store, environment, period, callback_agent_id)


class UnknownEnvironment(LookupError):
    """An environment no worker ever counted a call of: a typo, most likely."""


async def read_call(settings: Settings, environment: str, call_id: str) -> CallResponse | None:
    """What ``GET /api/v1/callbacks/{call_id}`` returns (None: its 404)."""
    async with CounterStore.from_settings(settings) as store:
        record = await store.call_record(environment, call_id)
    return None if record is None else explain(call_id, record)


def print_call(response: CallResponse, console: Console | None = None) -> None:
    c = response.data
    console = console or Console()
    table = Table(title=f"Callback {c.call_id}")
    table.add_column("field")
    table.add_column("value")
    for name, value in c.model_dump(mode="json").items():
        table.add_row(name, "-" if value is None else str(value))
    console.print(table)


def print_stats(environment: str, response: StatsResponse, console: Console | None = None,
                callback_agent_id: str | None = None) -> None:
    data = response.data
    console = console or Console()
    whose = environment if callback_agent_id is None else \
        f"callback agent {callback_agent_id} in {environment}"
    table = Table(title=f"Callbacks of {whose}, {data.period.start} .. {data.period.end}")
    table.add_column("metric")
    table.add_column("count", justify="right")
    table.add_row("total callbacks received", str(data.total_callbacks_received))
    table.add_row("callbacks answered", str(data.callbacks_answered))
    table.add_row("callbacks unmatched", str(data.callbacks_unmatched))
    for row in data.callbacks_by_source_agent:
        label = f"from {row.source_agent_id}" + (f" ({row.name})" if row.name else "")
        table.add_row(label, str(row.count))
    console.print(table)
