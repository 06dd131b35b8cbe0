"""Console roles: what each may see and do, and the API scopes its principal carries.

Central only stores and shows, so the roles differ in what they may read, not in what they may
switch: a *viewer* and an *operator* read the fleet, alarms, points and history (with CSV
export); an *administrator* also reads the batch audit (rejected batches, gap records; the API's
``admin`` scope), manages console accounts and reads the console's own audit log. The operator
role is kept apart from the viewer's so that central-side alarm handling, when it comes, has a
role to go to. Any role may be limited to some estates.

Managing accounts needs an administrator with **every** estate: an administrator limited to
estate A could otherwise grant itself estate B.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CONSOLE_ROLES", "permissions_of", "scopes_of"]

CONSOLE_ROLES: Final = ("admin", "operator", "viewer")

_PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    "viewer": frozenset({"view"}),
    "operator": frozenset({"view"}),
    "admin": frozenset({"view", "batch_audit", "users", "console_audit"}),
}
# The scopes of the principal the /api/v1 routes see (cloud_sync.central.principal): "admin"
# reads the batch audit there.
_SCOPES: Final[dict[str, frozenset[str]]] = {
    "viewer": frozenset({"read"}),
    "operator": frozenset({"read"}),
    "admin": frozenset({"read", "admin", "metrics"}),
}


def permissions_of(role: str, *, limited: bool) -> frozenset[str]:
    perms = _PERMISSIONS.get(role, frozenset())
    if limited:
        perms = perms - {"users"}
    return perms


def scopes_of(role: str) -> frozenset[str]:
    return _SCOPES.get(role, frozenset())
