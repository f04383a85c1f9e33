"""The kserve.Model server's body limit, driven as ASGI: a declared and a streamed (chunked) oversize body."""
from __future__ import annotations

import asyncio
import json

from serving.kserve_guards import BodySizeLimit


def run(middleware: BodySizeLimit, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, dict, int]:
    sent: list[dict] = []
    queue = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    read = {"n": 0}

    async def receive() -> dict:
        read["n"] += 1
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(middleware({"type": "http", "headers": headers}, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), read["n"]


async def echo_app(scope, receive, send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps({"bytes": len(body)}).encode()})


def test_a_body_within_the_limit_reaches_the_app():
    assert run(BodySizeLimit(echo_app, 10), [b"12345", b"67890"], [])[:2] == (200, {"bytes": 10})


def test_a_declared_oversize_body_is_refused_before_the_app_reads_it():
    status, body, _ = run(BodySizeLimit(echo_app, 10), [b"x" * 11], [(b"content-length", b"11")])
    assert status == 413 and "11 bytes exceeds the limit of 10" in body["error"]


def test_a_streamed_oversize_body_is_cut_off_and_drained():
    status, body, reads = run(BodySizeLimit(echo_app, 10), [b"x" * 6] * 5, [])
    assert status == 413 and "more than 10 bytes" in body["error"]
    assert reads == 5  # the rest of the body was read (and dropped), so the client gets the answer
