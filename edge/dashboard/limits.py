"""Request body limits for the dashboard, applied before anything parses a body (issue 17).

The dashboard shares its event loop with the device polling, so a body must never be read
into memory without a bound: a multi-gigabyte POST to the login route would stall or kill the
gateway. :class:`BodyLimit` is an ASGI middleware in front of every route:

* a declared ``Content-Length`` over the route's limit is answered 413 at once, before
  authentication and before a byte of the body is read (a malformed length is 400);
* a body without a length (chunked) is counted as it streams in and cut off with 413 as soon
  as it passes the limit (:class:`BodyTooLarge`, raised inside the handler that reads it).

Routes reachable without a session (login, setup, logout) get the small ``PUBLIC_MAX_BYTES``;
every other route ``dashboard.max_body_bytes``. Central's API does the same
(``cloud_sync.central.api.BodyLimit``); the answers here use the dashboard's error shape
``{"error": "too_large", "max_bytes": N}``.
"""

from __future__ import annotations

import json
from typing import Final

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["PUBLIC_MAX_BYTES", "BodyLimit", "BodyTooLarge"]

# A login or setup body is a user name, a password (<= 1024 characters) and a few short fields.
PUBLIC_MAX_BYTES: Final = 16 * 1024
_PUBLIC_PATHS: Final = frozenset({"/api/login", "/api/setup", "/api/logout"})


class BodyTooLarge(HTTPException):
    """A streamed body passed its limit (answered 413 by the app's handler).

    FastAPI's own ``HTTPException``: FastAPI lets that one through while it reads a body, where
    any other exception would become a 400 "error parsing the body".
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body over {max_bytes} bytes")
        self.max_bytes = max_bytes


class BodyLimit:
    """ASGI middleware: refuse request bodies over the route's limit with 413, before parsing."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, public_max_bytes: int = PUBLIC_MAX_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.public_max_bytes = min(public_max_bytes, max_bytes)

    def limit_for(self, path: str) -> int:
        return self.public_max_bytes if path in _PUBLIC_PATHS else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _reply(send, 400, {"error": "bad_length"})
                return
            if int(declared) > limit:
                await _reply(send, 413, {"error": "too_large", "max_bytes": limit})
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)


async def _reply(send: Send, status: int, body: dict[str, object]) -> None:
    data = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
        (b"connection", b"close"),  # the unread body must not be taken for the next request
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
