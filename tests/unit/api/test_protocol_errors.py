"""The aiohttp patch: checked before it is installed, and installed once."""

from __future__ import annotations

import pytest
from aiohttp import web_server
from aiohttp.web_protocol import RequestHandler

from stream_app.api import protocol_errors
from stream_app.patching import Incompatible


def test_the_installed_aiohttp_passes_the_check_and_the_patch_is_installed() -> None:
    protocol_errors.check()
    protocol_errors.install()
    protocol_errors.install()
    assert web_server.RequestHandler is protocol_errors.JsonProtocolErrors  # type: ignore[attr-defined]


def test_an_unsupported_version_is_refused() -> None:
    with pytest.raises(Incompatible, match=r"4\.0\.0 is not supported"):
        protocol_errors.check("4.0.0")


def test_a_changed_signature_is_refused() -> None:
    class Changed(RequestHandler):  # type: ignore[misc]
        def handle_error(self, request, status=500):  # type: ignore[no-untyped-def,override]
            raise AssertionError

    with pytest.raises(Incompatible, match="handle_error"):
        protocol_errors.check("3.9.0", Changed)
