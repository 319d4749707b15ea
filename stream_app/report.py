"""``stream-app stats``: the reader's numbers on the terminal, from the same code path."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table

from stream_app.api.reader import fetch_stats
from stream_app.api.responses import StatsResponse, resolve_period
from stream_app.core.counters import CounterStore
from stream_app.settings import Settings


async def read_stats(settings: Settings, environment: str, start: str | None,
                     end: str | None) -> StatsResponse:
    """Exactly what ``GET /api/v1/callback-agents/stats`` returns for ``environment``."""
    period = resolve_period(start, end, datetime.now(settings.zone).date())
    async with CounterStore.from_settings(settings) as store:
        return await fetch_stats(store, environment, period)


def print_stats(environment: str, response: StatsResponse, console: Console | None = None) -> None:
    data = response.data
    console = console or Console()
    table = Table(title=f"Callbacks of {environment}, {data.period.start} .. {data.period.end}")
    table.add_column("metric")
    table.add_column("count", justify="right")
    table.add_row("total callbacks received", str(data.total_callbacks_received))
    table.add_row("callbacks answered", str(data.callbacks_answered))
    table.add_row("callbacks unmatched", str(data.callbacks_unmatched))
    for row in data.callbacks_by_source_agent:
        label = f"from {row.source_agent_id}" + (f" ({row.name})" if row.name else "")
        table.add_row(label, str(row.count))
    console.print(table)
