"""The one patch this project makes to aiohttp: its protocol-level errors as JSON.

aiohttp answers requests its HTTP parser rejects (an over-long or NUL-bearing header, a
bad request line) before any handler or middleware runs, in plain text, and logs the
parser's exception, whose text can quote the offending header (a token). The patch makes
its server build handlers that answer the contract's JSON error and log only the status
and the exception's type. :func:`install` checks the aiohttp version and the patched
method's signature first (:mod:`stream_app.patching`, as every patch of this project),
so an upgrade cannot silently turn the guard off (``tests/unit/api/test_protocol_errors.py``).
"""

from __future__ import annotations

import logging
from importlib.metadata import version

import orjson
from aiohttp import web, web_server
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from stream_app.api.responses import ErrorResponse
from stream_app.patching import Incompatible, Signature, check_signatures, check_version

logger = logging.getLogger(__name__)

SUPPORTED_MAJOR = "3."
EXPECTED = ("self", "request", "status", "exc", "message")


def check(aiohttp_version: str | None = None,
          handler: type[RequestHandler] = RequestHandler) -> None:
    """Raise :class:`~stream_app.patching.Incompatible` unless the patch still fits."""
    found = aiohttp_version or version("aiohttp")
    check_version("aiohttp", found, SUPPORTED_MAJOR, "stream_app/api/protocol_errors.py")
    check_signatures(f"aiohttp {found}", [Signature(handler, "handle_error", EXPECTED)])
    if not hasattr(web_server, "RequestHandler"):
        raise Incompatible(f"aiohttp {found}: web_server.RequestHandler is gone")


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
