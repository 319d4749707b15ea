"""A busy port is one line naming the setting to change."""

from __future__ import annotations

import socket

import pytest

from stream_app.ports import refuse_busy


def test_a_free_port_passes_and_a_busy_one_names_its_setting() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(SystemExit) as exc:
            refuse_busy("127.0.0.1", port, "STREAM_APP_READER_PORT")
        assert str(exc.value).startswith(f"error: port {port} on 127.0.0.1 is in use: set "
                                         "STREAM_APP_READER_PORT")
    refuse_busy("127.0.0.1", port, "STREAM_APP_READER_PORT")
