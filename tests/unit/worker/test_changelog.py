"""Table changes: sent per batch; before a revocation, bounded and never fatal."""

from __future__ import annotations

import asyncio

import pytest

from stream_app.worker import changelog
from stream_app.worker.changelog import TableChanges


class Table:
    def __init__(self, fails: bool = False, hangs: bool = False) -> None:
        self.sent = 0
        self.fails, self.hangs = fails, hangs

    async def send_changes(self, producer: object) -> None:
        if self.hangs:
            await asyncio.sleep(3600)
        if self.fails:
            raise ConnectionError("broker away")
        self.sent += 1


async def test_every_tables_changes_are_sent() -> None:
    tables = [Table(), Table()]
    await TableChanges(tables, object()).send()  # type: ignore[arg-type]
    assert [t.sent for t in tables] == [1, 1]


async def test_a_revocation_waits_a_bounded_time_and_never_raises(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(changelog, "REVOCATION_SEND_SECONDS", 0.05)
    for table in (Table(hangs=True), Table(fails=True)):
        await TableChanges([table], object()).before_revocation(  # type: ignore[list-item,arg-type]
            None, signal=None)
    assert caplog.text.count("table changes not sent before the revocation") == 2
