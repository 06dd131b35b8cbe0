"""Request body limits (issue 17, item 2): a huge body is refused with 413 before it is parsed,
declared or streamed, on the routes open without a session and on every other route."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge.dashboard.limits import PUBLIC_MAX_BYTES
from tests.unit.dashboard.conftest import XHR, Running, setup_admin, start

_CHUNK = b"x" * 65536


@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[Running]:
    async for running in start(tmp_path, {"listen": "127.0.0.1:0", "max_body_bytes": 100_000}):
        yield running


async def _raw(running: Running, head: str, chunks: int = 0) -> tuple[int, dict[str, object], int]:
    """Send ``head`` and then up to ``chunks`` chunks of 64 KiB (chunked encoding) while reading
    the answer; returns the status, the JSON body and how many chunks went out before it came."""
    reader, writer = await asyncio.open_connection("127.0.0.1", running.server.port)
    sent = 0

    async def feed() -> None:
        nonlocal sent
        for _ in range(chunks):
            writer.write(b"%x\r\n%s\r\n" % (len(_CHUNK), _CHUNK))
            await writer.drain()
            sent += 1

    feeder = asyncio.create_task(feed())
    try:
        writer.write(head.encode())
        await writer.drain()
        async with asyncio.timeout(20):
            status_line = await reader.readline()
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            length = headers.get("content-length")
            body = await (reader.read() if length is None else reader.readexactly(int(length)))
        answered_after = sent
    finally:
        feeder.cancel()
        writer.close()
    data = json.loads(body) if body.startswith(b"{") else {"text": body.decode(errors="replace")}
    return int(status_line.split()[1]), data, answered_after


def _head(path: str, extra: str, cookie: str = "", csrf: str = "") -> str:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: gw",
        "Content-Type: application/json",
        "X-Requested-With: gatehouse",
        extra,
    ]
    if cookie:
        lines += [f"Cookie: {cookie}", f"X-CSRF-Token: {csrf}"]
    return "\r\n".join(lines) + "\r\n\r\n"


async def test_a_declared_multi_gigabyte_login_is_413_before_the_body(dash: Running) -> None:
    # Before the limit the server waited for 5 GB that never came (or read them into memory).
    status, body, _ = await _raw(dash, _head("/api/login", "Content-Length: 5000000000"))
    assert status == 413 and body == {"error": "too_large", "max_bytes": PUBLIC_MAX_BYTES}


async def test_a_streamed_login_body_is_cut_off_at_the_limit(dash: Running) -> None:
    status, body, chunks = await _raw(dash, _head("/api/login", "Transfer-Encoding: chunked"), chunks=2000)
    assert status == 413 and body["error"] == "too_large"
    # answered long before the 125 MiB were sent (socket buffers hold a few MiB at most)
    assert chunks < 1000


async def test_a_bad_content_length_is_400(dash: Running) -> None:
    # (uvicorn's HTTP parser refuses it before the middleware sees it)
    status, _, _ = await _raw(dash, _head("/api/login", "Content-Length: -1"))
    assert status == 400


async def test_authenticated_routes_use_the_configured_limit(small: Running) -> None:
    csrf = await setup_admin(small.client)
    # a body inside the limit goes through as before
    keys = [f"s/d{i}/p/a" for i in range(2000)]
    ok = await small.client.post("/api/alarms/ack_all", json={"keys": keys}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200, ok.text
    cookie = "; ".join(f"{k}={v}" for k, v in small.client.cookies.items())
    status, body, _ = await _raw(small, _head("/api/alarms/ack_all", "Content-Length: 100001", cookie, csrf))
    assert status == 413 and body == {"error": "too_large", "max_bytes": 100_000}
    status, body, _ = await _raw(
        small, _head("/api/alarms/ack_all", "Transfer-Encoding: chunked", cookie, csrf), chunks=200
    )
    assert status == 413 and body == {"error": "too_large", "max_bytes": 100_000}


async def test_a_normal_login_still_works_after_a_refused_one(dash: Running) -> None:
    await _raw(dash, _head("/api/login", "Content-Length: 5000000000"))
    await setup_admin(dash.client)
    response = await dash.client.post(
        "/api/login", json={"username": "admin", "password": "correct horse 1"}, headers=XHR
    )
    assert response.status_code == 200
