"""The console session on central's ``/api/v1`` routes.

The API routes may run in FastAPI's thread pool, and the account database is used from the
event loop only, so :class:`SessionPrincipal` (pure ASGI, on the loop) resolves the session
cookie of an ``/api/v1`` request before the route runs and leaves the principal in the
request's state; :func:`session_principal` (installed as ``app.state.session_principal``)
only reads it back. A request with a bearer token is left to the token check. A
state-changing request needs the CSRF header as on the console's own routes.
"""

from __future__ import annotations

import hmac
from http.cookies import CookieError, SimpleCookie
from typing import Final

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from cloud_sync.central.console.context import ConsoleContext
from cloud_sync.central.principal import Principal

__all__ = ["CSRF_COOKIE", "CSRF_HEADER", "SESSION_COOKIE", "SessionPrincipal", "session_principal"]

SESSION_COOKIE: Final = "ghc_session"
CSRF_COOKIE: Final = "ghc_csrf"
CSRF_HEADER: Final = "x-csrf-token"
_STATE_KEY: Final = "console_principal"
_UNSAFE: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _cookie(headers: dict[bytes, bytes], name: str) -> str | None:
    raw = headers.get(b"cookie")
    if not raw:
        return None
    try:
        jar = SimpleCookie(raw.decode("latin-1"))
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


class SessionPrincipal:
    """ASGI middleware: a console session on an ``/api/v1`` request becomes its principal."""

    def __init__(self, app: ASGIApp, *, console: ConsoleContext) -> None:
        self.app = app
        self.console = console

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith("/api/v1/"):
            state = scope.setdefault("state", {})
            state.pop(_STATE_KEY, None)  # never trust anything set before this point
            headers = dict(scope.get("headers") or ())
            token = _cookie(headers, SESSION_COOKIE)
            if token and b"authorization" not in headers:
                ctx = self.console
                found = ctx.accounts.session(token, now=ctx.clock())
                if not isinstance(found, str):
                    session, user = found
                    sent = headers.get(CSRF_HEADER.encode(), b"")
                    if scope.get("method") not in _UNSAFE or hmac.compare_digest(sent, session.csrf.encode()):
                        state[_STATE_KEY] = ctx.principal(user)
        await self.app(scope, receive, send)


def session_principal(request: Request) -> Principal | None:
    principal: Principal | None = getattr(request.state, _STATE_KEY, None)
    return principal
