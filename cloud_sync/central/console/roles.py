"""Console roles: what each may see and do, and the API scopes its principal carries.

Central only stores and shows, so the roles differ in what they may read, not in what they may
switch: a *viewer* and an *operator* read the fleet, alarms, points and history (with CSV
export); an *operator* also sends signed commands to the gateways it sees (acknowledge or shelve
an alarm, write a point, push a site file: the API's ``command`` scope); an *administrator* also
reads the batch audit (rejected batches, gap records; the API's ``admin`` scope), manages console
accounts, enrolment tokens and revocation (``trust``) and reads the console's own audit log. Any
role may be limited to some estates.

Managing accounts and trust needs an administrator with **every** estate: an administrator
limited to estate A could otherwise grant itself estate B or enrol a gateway into it.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CONSOLE_ROLES", "permissions_of", "scopes_of"]

CONSOLE_ROLES: Final = ("admin", "operator", "viewer")

_PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    "viewer": frozenset({"view"}),
    "operator": frozenset({"view", "commands"}),
    "admin": frozenset({"view", "batch_audit", "users", "console_audit", "commands", "trust"}),
}
# The scopes of the principal the /api/v1 routes see (cloud_sync.central.principal): "admin"
# reads the batch audit there.
_SCOPES: Final[dict[str, frozenset[str]]] = {
    "viewer": frozenset({"read"}),
    "operator": frozenset({"read", "command"}),
    "admin": frozenset({"read", "admin", "metrics", "command", "trust"}),
}


def permissions_of(role: str, *, limited: bool) -> frozenset[str]:
    perms = _PERMISSIONS.get(role, frozenset())
    if limited:
        perms = perms - {"users", "trust"}
    return perms


def scopes_of(role: str, *, limited: bool = False) -> frozenset[str]:
    scopes = _SCOPES.get(role, frozenset())
    if limited:
        scopes = scopes - {"trust"}
    return scopes
