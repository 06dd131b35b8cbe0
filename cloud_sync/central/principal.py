"""Who is asking: an API token or a console session, with its scopes and the estates it may see.

Every ``/api/v1`` route resolves one :class:`Principal` (``Authorization: Bearer`` or, when the
console installed ``app.state.session_principal``, the session cookie) and filters by
``estates``: a gateway or point of an estate the principal does not see answers 404, never 403,
so its existence does not leak.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cloud_sync.central.config import ApiToken

__all__ = ["Principal", "PrincipalSource", "match_token", "token_digests", "token_principal"]

PrincipalSource = Literal["token", "session"]


@dataclass(frozen=True, slots=True)
class Principal:
    name: str  # token name or user name
    scopes: frozenset[str]  # "read", "ingest", "admin", "metrics", ...
    estates: frozenset[str] | None  # None: every estate
    source: PrincipalSource

    def sees(self, estate: str) -> bool:
        return self.estates is None or estate in self.estates

    def has(self, scope: str) -> bool:
        return scope in self.scopes


def token_digests(tokens: Sequence[ApiToken]) -> list[tuple[str, ApiToken]]:
    return [(t.digest(), t) for t in tokens]


def match_token(digests: Sequence[tuple[str, ApiToken]], offered: str) -> ApiToken | None:
    """The configured token ``offered`` is, compared as SHA-256 digests against *every* token, so
    the time taken does not say which one nearly matched."""
    digest = hashlib.sha256(offered.encode("utf-8")).hexdigest()
    matches = [t for d, t in digests if hmac.compare_digest(digest, d)]
    return matches[0] if matches else None


def token_principal(token: ApiToken) -> Principal:
    estates = None if token.estates is None else frozenset(token.estates)
    return Principal(token.name, frozenset(token.scopes), estates, "token")
