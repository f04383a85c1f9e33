"""HTTP-level guards for the kserve.Model server's FastAPI app: a request-body size limit (KServe's server has
none: a 50 MB body was parsed whole) and validation errors that never echo the payload back (FastAPI's
default 422 repeats every invalid input, so an 11 MB body gave a 21 MB reply)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

Message = MutableMapping[str, Any]
DRAIN_LIMIT = 256 * 1024 * 1024  # beyond this the connection is simply closed after the 413


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: 413 for a body over `max_bytes`, from Content-Length before reading, else while reading."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._drain(receive)
            await self._refuse(send, int(declared))
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._drain(receive)
                await self._refuse(send, None)

    async def _drain(self, receive: Receive) -> None:
        """Read and drop the rest of the body (up to DRAIN_LIMIT), so the client reads a 413 instead of a reset
        connection; memory stays one chunk."""
        drained = 0
        while drained <= DRAIN_LIMIT:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return
            drained += len(message.get("body", b""))

    async def _refuse(self, send: Send, declared: int | None) -> None:
        size = f"{declared} bytes" if declared is not None else f"more than {self.max_bytes} bytes"
        response = JSONResponse(status_code=413, content={
            "error": f"request body of {size} exceeds the limit of {self.max_bytes} bytes"})
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


async def validation_error_without_input(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming where and what is wrong, without the offending input or its context."""
    detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
              for e in exc.errors()[:20]]
    return JSONResponse(status_code=422, content={"error": "request body does not match the protocol",
                                                  "detail": detail})


def install_guards(app: FastAPI, max_request_bytes: int) -> None:
    """Add both guards to kserve's app (before ModelServer.start builds its middleware stack)."""
    app.add_middleware(BodySizeLimit, max_bytes=max_request_bytes)
    handler: Callable[[Request, Any], Awaitable[JSONResponse]] = validation_error_without_input
    app.add_exception_handler(RequestValidationError, handler)
