"""Versioned state: fixture bytes in each format this release writes or wrote decode to
the same records; a newer version is refused with a line naming the kind, key and
version."""

from __future__ import annotations

import orjson
import pytest

from stream_app.core.domain.matching import CallEvent, OutboundRef, PendingCall
from stream_app.core.domain.records import (
    FORMAT,
    InboundSeen,
    OutboundSeen,
    Progress,
    UnknownFormat,
    decode_keyed,
    encode_keyed,
    history_of,
    history_row,
    pending_of,
    pending_row,
)

OUT = OutboundSeen("env-1", 1705312800.0, "agent-2", "out-1", 1705312801.5)
IN = InboundSeen("env-1", 1705316400.0, "answered", "call-1", "cb-1", "ev-1", 1705316401.0)
MARKS = Progress((("outbound-calls", 0, 1705316390.0), ("inbound-callbacks", 3, -1.0)))

# Written by this release (format 3), by the one before (2: keyed records and history
# rows unchanged since) and by the releases before versions (format 1).
FIXTURES = {
    b'["o",3,"env-1",1705312800.0,"agent-2","out-1",1705312801.5]': OUT,
    b'["i",3,"env-1",1705316400.0,"answered","call-1","cb-1","ev-1",1705316401.0]': IN,
    b'["o",2,"env-1",1705312800.0,"agent-2","out-1",1705312801.5]': OUT,
    b'["o","env-1",1705312800.0,"agent-2","out-1",1705312801.5]': OUT,
    b'["i",2,"env-1",1705316400.0,"answered","call-1","cb-1","ev-1",1705316401.0]': IN,
    b'["i","env-1",1705316400.0,"answered","call-1","cb-1","ev-1",1705316401.0]': IN,
    b'["p",2,[["outbound-calls",0,1705316390.0],["inbound-callbacks",3,-1.0]]]': MARKS,
    b'["p",[["outbound-calls",0,1705316390.0],["inbound-callbacks",3,-1.0]]]': MARKS,
}
REF = OutboundRef(1705312800.0, 1705312801.5, "agent-2", "out-1")
PENDING = PendingCall("env-1", "call-1", 3, (CallEvent("received", 1705316400.0,
                                                        1705316401.0, "cb-1", "ev-1"),))
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACED = PendingCall("env-1", "call-1", 3, (CallEvent("received", 1705316400.0, 1705316401.0,
                                                       "cb-1", "ev-1", TRACE),))
HISTORY_ROWS = [b'{"v":3,"rows":[[1705312800.0,1705312801.5,"agent-2","out-1"]]}',
                b'{"v":2,"rows":[[1705312800.0,1705312801.5,"agent-2","out-1"]]}',
                b'[[1705312800.0,1705312801.5,"agent-2","out-1"]]']
PENDING_ROWS = [b'{"v":3,"rows":[["env-1","call-1",3,[["received",1705316400.0,'
                b'1705316401.0,"cb-1","ev-1",""]]]]}',
                b'{"v":2,"rows":[["env-1","call-1",3,[["received",1705316400.0,'
                b'1705316401.0,"cb-1","ev-1"]]]]}',
                b'[["env-1","call-1",3,[["received",1705316400.0,1705316401.0,"cb-1","ev-1"]]]]']


@pytest.mark.parametrize("raw", FIXTURES)
def test_fixture_keyed_records_decode(raw: bytes) -> None:
    assert decode_keyed(raw) == FIXTURES[raw]


def test_this_release_writes_the_current_format() -> None:
    for record in (OUT, IN, MARKS):
        assert orjson.loads(encode_keyed(record))[1] == FORMAT
        assert decode_keyed(encode_keyed(record)) == record
    assert history_row([REF])["v"] == FORMAT and pending_row({"call-1": PENDING})["v"] == FORMAT
    assert orjson.dumps(history_row([REF])) == HISTORY_ROWS[0]
    assert orjson.dumps(pending_row({"call-1": PENDING})) == PENDING_ROWS[0]
    assert pending_of(orjson.loads(orjson.dumps(pending_row({"call-1": TRACED})))) == \
        {"call-1": TRACED}, "format 3: an event keeps its trace context"


@pytest.mark.parametrize("raw", HISTORY_ROWS)
def test_fixture_history_rows_decode(raw: bytes) -> None:
    assert history_of(orjson.loads(raw)) == [REF]


@pytest.mark.parametrize("raw", PENDING_ROWS)
def test_fixture_pending_rows_decode(raw: bytes) -> None:
    assert pending_of(orjson.loads(raw)) == {"call-1": PENDING}


def test_a_newer_format_is_refused_naming_kind_key_and_version() -> None:
    with pytest.raises(UnknownFormat, match=r"keyed record 'o' for key b'env-1\\x1f\+55' has "
                                            r"format version 4"):
        decode_keyed(b'["o",4,"env-1",1.0,"a","c",2.0,"new field"]', b"env-1\x1f+55")
    with pytest.raises(UnknownFormat, match=r"history row for key b'k' has format version 9"):
        history_of({"v": 9, "rows": []}, b"k")
    with pytest.raises(UnknownFormat, match=r"pending row .* format version None"):
        pending_of({"rows": []}, b"k")
