"""The reader's answers: periods and the explanation of a stored call record."""

from __future__ import annotations

from datetime import date

import pytest

from stream_app.api.responses import ApiError, explain, resolve_period
from stream_app.core.store.codecs import CallRecord


def test_a_period_defaults_to_the_last_30_days_and_rejects_a_reversed_one() -> None:
    period = resolve_period(None, None, date(2024, 6, 1))
    assert (period.start, period.end) == (date(2024, 5, 2), date(2024, 6, 1))
    with pytest.raises(ApiError) as exc:
        resolve_period("2024-06-02", "2024-06-01", date(2024, 6, 3))
    assert exc.value.code == "INVALID_DATE_RANGE"


def test_an_explanation_reads_the_record_s_named_fields() -> None:
    pending = explain("c", CallRecord(e="1717210860.0", d="2024-06-01", g="cb-1"))
    assert (pending.data.decision, pending.data.callback_agent_id, pending.data.late) \
        == ("pending", "cb-1", None)
    decided = explain("c", CallRecord(e="1.0", d="2024-06-01", r="2.0", a="1", o="matched",
                                      s="agent-1", sc="o-1", oa="cb-2", cu="3.0", lt="1"))
    data = decided.data
    assert (data.decision, data.source_agent_id, data.source_call_id, data.answered,
            data.late, data.callback_agent_id) == ("matched", "agent-1", "o-1", True, True,
                                                   "cb-2")
    assert data.time.timestamp() == 2.0 and data.cutoff is not None
