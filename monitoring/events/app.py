"""The sink's HTTP routes (FastAPI): POST / (KServe logger CloudEvents), POST /feedback, GET /metrics, /healthz.

Every bad event is answered 4xx with `{"error": reason, "detail": message}` and counted by reason; an event
the parser did not foresee is a 400 too (and logged), never a 5xx. 200 means buffered: KServe's logger
treats any other status as a failed delivery.
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from monitoring.events.errors import EventRejected
from monitoring.events.metrics import CONTENT_TYPE
from monitoring.events.sink import EventSink

log = logging.getLogger(__name__)


def create_app(sink: EventSink) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sink.start()
        try:
            yield
        finally:
            sink.close()  # uvicorn runs this on SIGTERM / SIGINT: the last batch is written

    app = FastAPI(title="onevision event sink", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    async def handle(request: Request, ingest: Callable[[bytes], tuple[int, int]]) -> Response:
        try:
            length = int(request.headers.get("content-length") or 0)
        except ValueError:
            length = 0
        try:
            if length > sink.config.max_body_bytes:
                raise EventRejected("body_too_large", f"body has {length} bytes; at most {sink.config.max_body_bytes}", 413)
            accepted, duplicates = ingest(await request.body())
        except EventRejected as exc:
            sink.reject(exc)
            return JSONResponse({"error": exc.reason, "detail": str(exc)}, status_code=exc.status)
        except Exception as exc:  # noqa: BLE001 - a malformed event must never become a 5xx
            log.exception("unexpected error while parsing an event")
            sink.reject(EventRejected("invalid", ""))
            return JSONResponse({"error": "invalid", "detail": f"event could not be parsed: {type(exc).__name__}: {exc}"},
                                status_code=400)
        return JSONResponse({"accepted": accepted, "duplicates": duplicates})

    @app.post("/")
    async def inference_event(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        params = dict(request.query_params)
        return await handle(request, lambda body: sink.ingest_inference(headers, body, params))

    @app.post("/feedback")
    async def feedback(request: Request) -> Response:
        return await handle(request, sink.ingest_feedback)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(sink.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "buffered": len(sink.buffer)}

    return app
