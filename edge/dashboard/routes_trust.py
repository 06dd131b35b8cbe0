"""``GET /api/trust``: is this gateway still trusted by central, and is its identity healthy?

What the page's revocation banner and the health view read (``static/js/trust.js``):

* ``revoked`` — central's ``gateway.revoked`` notice (``edge.commands``), or a renewal central
  refused as ``revoked``: the gateway keeps polling and buffering, but nothing reaches central;
* ``broker_refuses_credentials`` — the broker answered the last login with "bad user name or
  password" / "not authorised": a revoked or replaced identity, not a network outage;
* ``identity`` — the enrolled identity's renewal status (``edge.identity.renewal``), or None.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends

from edge.dashboard.auth import Caller, require
from edge.dashboard.context import DashboardContext, get_context

__all__ = ["REFUSED_LOGIN_CODES", "router", "trust_problems", "trust_status"]

router = APIRouter(prefix="/api")
Ctx = Annotated[DashboardContext, Depends(get_context)]

# CONNACK reason codes that mean "these credentials are not welcome" (MQTT 5: bad user name or
# password, not authorised, bad authentication method; 3.1.1's 4 and 5 as paho reports them).
REFUSED_LOGIN_CODES: Final = frozenset({0x86, 0x87, 0x8C, 4, 5})


def trust_status(gateway: Any) -> dict[str, Any]:
    uplink = gateway.uplink
    status: dict[str, Any] = {} if uplink is None else uplink.status()
    identity = status.get("identity")
    # The command executor runs only with the uplink; a gateway without one has no notice.
    revoked = getattr(getattr(gateway, "commands", None), "revoked", None)
    if revoked is None and identity is not None and identity.get("refused") == "revoked":
        revoked = {"reason": "renewal refused: revoked", "at": None}
    code = status.get("connect_refused")
    return {
        "revoked": revoked,
        "broker_refuses_credentials": code in REFUSED_LOGIN_CODES,
        "connect_refused": code,
        "identity": identity,
    }


def trust_problems(trust: dict[str, Any]) -> list[dict[str, str]]:
    """What ``/healthz`` lists as unhealthy about trust."""
    problems = []
    if trust["revoked"] is not None:
        problems.append(
            {
                "check": "trust",
                "detail": f"this gateway was revoked by central: {trust['revoked'].get('reason')}",
            }
        )
    if trust["broker_refuses_credentials"]:
        code = trust["connect_refused"]
        problems.append(
            {"check": "trust", "detail": f"broker refuses this gateway's credentials (0x{code:02x})"}
        )
    identity = trust["identity"]
    if identity is not None and identity["state"] in ("expired", "refused"):
        detail = f"identity renewal {identity['state']}"
        if identity.get("last_error"):
            detail += f": {identity['last_error']}"
        problems.append({"check": "identity", "detail": detail})
    return problems


@router.get("/trust")
async def trust(ctx: Ctx, _: Annotated[Caller, Depends(require("view"))]) -> dict[str, Any]:
    return trust_status(ctx.gateway)
