"""Doubles of faust's consumer for the patch tests."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from faust.types import TP


def consumer_double(committed: dict[TP, int | None] | None = None, generation: int = 1,
                    flow_active: bool = True) -> Any:
    app = SimpleNamespace(
        consumer_generation_id=generation,
        flow_control=SimpleNamespace(is_active=lambda: flow_active),
        topics=SimpleNamespace(acks_enabled_for=lambda topic: True),
        tables=SimpleNamespace(changelog_topics={"app-history-changelog"}),
    )
    double = SimpleNamespace(
        app=app,
        _committed_offset=defaultdict(lambda: None, committed or {}),
        _acked=defaultdict(list), _acked_index=defaultdict(set), _gap=defaultdict(list),
        _unacked_messages=set(), _n_acked=0, _waiting_for_ack=None,
    )
    return double


class Msg(SimpleNamespace):
    __hash__ = object.__hash__


def message(offset: int, generation: int | None = 1) -> Any:
    tp = TP("in", 0)
    return Msg(tp=tp, offset=offset, topic=tp.topic, acked=False, generation_id=generation)


TP0 = TP("in", 0)
