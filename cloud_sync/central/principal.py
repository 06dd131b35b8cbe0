"""Who is asking: an API token or a console session, with its scopes and the estates it may see.

Every ``/api/v1`` route resolves one :class:`Principal` (``Authorization: Bearer`` or, when the
console installed ``app.state.session_principal``, the session cookie) and filters by
``estates``: a gateway or point of an estate the principal does not see answers 404, never 403,
so its existence does not leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Principal", "PrincipalSource"]

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
