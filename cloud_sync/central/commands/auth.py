"""Who is asking, for the command routes: the same two ways in as the rest of ``/api/v1``.

A bearer token from ``api.tokens`` (compared as SHA-256 digests, in constant time, against
every token), else the console's session principal (``app.state.session_principal``, which
already demanded the CSRF header on a POST). The token matching is ``cloud_sync.central.principal``'s,
shared with the rest of the API.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cloud_sync.central.config import ApiToken
from cloud_sync.central.principal import Principal, match_token, token_digests, token_principal

__all__ = ["principal_dependency"]

_BEARER = HTTPBearer(auto_error=False)


def principal_dependency(tokens: Sequence[ApiToken], scope: str) -> Callable[..., Principal]:
    """A FastAPI dependency: the principal, 401 without one, 403 without ``scope``."""
    digests = token_digests(tokens)

    def authenticate(
        request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
    ) -> Principal:
        token = (
            match_token(digests, creds.credentials) if creds and creds.scheme.lower() == "bearer" else None
        )
        principal = None if token is None else token_principal(token)
        if principal is None:
            session: Callable[[Request], Principal | None] | None = getattr(
                request.app.state, "session_principal", None
            )
            principal = session(request) if session is not None else None
        if principal is None:
            raise HTTPException(
                401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )
        if not principal.has(scope):
            raise HTTPException(403, f"this token lacks the {scope!r} scope")
        return principal

    return authenticate
