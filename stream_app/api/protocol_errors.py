"""The one patch this project makes to aiohttp: its protocol-level errors as JSON.

aiohttp answers requests its HTTP parser rejects (an over-long or NUL-bearing header, a
bad request line) before any handler or middleware runs, in plain text, and logs the
parser's exception, whose text can quote the offending header (a token). The patch makes
its server build handlers that answer the contract's JSON error and log only the status
and the exception's type. :func:`install` checks the aiohttp version and the patched
method's signature first, so an upgrade cannot silently turn the guard off
(``tests/unit/api/test_protocol_errors.py``).
"""

from __future__ import annotations

import inspect
import logging
from importlib.metadata import version

import orjson
from aiohttp import web, web_server
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from stream_app.api.responses import ErrorResponse

logger = logging.getLogger(__name__)

SUPPORTED_MAJOR = "3."
EXPECTED = ("self", "request", "status", "exc", "message")


class IncompatibleAiohttp(RuntimeError):
    """The installed aiohttp is not the one the patch was checked against."""


def check(aiohttp_version: str | None = None,
          handler: type[RequestHandler] = RequestHandler) -> None:
    """Raise :class:`IncompatibleAiohttp` unless the patch still fits."""
    found = aiohttp_version or version("aiohttp")
    if not found.startswith(SUPPORTED_MAJOR):
        raise IncompatibleAiohttp(f"aiohttp {found} is not supported (needs 3.x)")
    got = tuple(inspect.signature(handler.handle_error).parameters)
    if got != EXPECTED:
        raise IncompatibleAiohttp(f"aiohttp {found}: RequestHandler.handle_error{got} "
                                  f"changed (expected {EXPECTED})")
    if not hasattr(web_server, "RequestHandler"):
        raise IncompatibleAiohttp(f"aiohttp {found}: web_server.RequestHandler is gone")


class JsonProtocolErrors(RequestHandler):
    """aiohttp's own error responses as the contract's JSON error (see the module doc)."""

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> StreamResponse:
        logger.warning("rejected a request aiohttp could not parse: HTTP %d (%s)", status,
                       type(exc).__name__ if exc is not None else "no exception")
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send the error")
        code = "BAD_REQUEST" if 400 <= status < 500 else "INTERNAL_ERROR"
        text = "malformed HTTP request" if code == "BAD_REQUEST" else "internal error"
        response = web.Response(body=orjson.dumps(ErrorResponse(message=text, code=code)
                                                  .model_dump(mode="json")),
                                status=status, content_type="application/json")
        response.force_close()
        return response


def install() -> None:
    """Check, then make aiohttp's server build :class:`JsonProtocolErrors` handlers
    (idempotent)."""
    check(handler=RequestHandler)
    web_server.RequestHandler = JsonProtocolErrors  # type: ignore[attr-defined]
