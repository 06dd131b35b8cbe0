"""``/api/v1`` routes for commands (``command`` scope; a gateway of an estate the principal does
not see answers 404, as everywhere in the API).

* ``POST /gateways/{id}/commands`` — issue one command: 202 with its ``cid`` and ``cseq``;
* ``POST /gateways/{id}/config`` — push a site file (a ``config.push`` command);
* ``GET /commands`` — newest first, ``gateway``/``state`` filters, ``cursor``/``limit`` with
  ``X-Next-Cursor``; ``GET /commands/{cid}`` — one command.

Who issued what from where is in the ledger (``by``, ``from``) and in the gateway's result.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from cloud_sync.central.commands.auth import principal_dependency
from cloud_sync.central.commands.ledger import CommandRow
from cloud_sync.central.commands.models import (
    CommandAccepted,
    CommandIn,
    CommandOut,
    ConfigPushIn,
    command_out,
)
from cloud_sync.central.commands.service import CommandService
from cloud_sync.central.commands.states import STATES
from cloud_sync.central.config import ApiToken
from cloud_sync.central.principal import Principal
from cloud_sync.errors import EnvelopeError

__all__ = ["command_router"]

_NO_GATEWAY = "no such gateway is enrolled or has been seen"


def _cursor(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        value = int(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii"))
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise HTTPException(422, "cursor is not one this API handed out") from exc
    if not 0 < value < 2**63:
        raise HTTPException(422, "cursor is not one this API handed out")
    return value


def _next(value: int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def command_router(
    service: CommandService,
    *,
    tokens: Sequence[ApiToken],
    enrolled: Callable[[str], bool],
    estate_of: Callable[[str], str],
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["commands"])
    # A default rather than Annotated: postponed annotations cannot see this local.
    commander = Depends(principal_dependency(tokens, "command"))

    def commandable(principal: Principal, gateway_id: str) -> None:
        if not enrolled(gateway_id) or not principal.sees(estate_of(gateway_id)):
            raise HTTPException(404, _NO_GATEWAY)

    def source_of(request: Request) -> str:
        return request.client.host if request.client is not None else ""

    async def issue(
        request: Request, principal: Principal, gateway_id: str, action: str, args: dict[str, Any], ttl_s: int
    ) -> CommandAccepted:
        commandable(principal, gateway_id)
        try:
            row = await service.issue(
                gateway_id, action, args, by=principal.name, source=source_of(request), ttl_s=ttl_s
            )
        except EnvelopeError as exc:
            raise HTTPException(400, str(exc)) from exc
        return CommandAccepted(
            cid=row.cid,
            gateway_id=gateway_id,
            cseq=row.cseq,
            state=row.state(service.now()),
            not_after=row.not_after,
        )

    @router.post(
        "/gateways/{gateway_id}/commands",
        status_code=202,
        response_model=CommandAccepted,
        responses={
            400: {"description": "arguments a gateway would refuse"},
            404: {"description": _NO_GATEWAY},
        },
    )
    async def send_command(
        request: Request,
        gateway_id: str,
        body: CommandIn,
        principal: Principal = commander,
    ) -> CommandAccepted:
        """Sign and send one command; its outcome comes back as the gateway's ``command.result``.

        ``state`` is ``pending`` once the broker has it, ``unsent`` when central could not publish."""
        return await issue(request, principal, gateway_id, body.action, body.args, body.ttl_s)

    @router.post(
        "/gateways/{gateway_id}/config",
        status_code=202,
        response_model=CommandAccepted,
        responses={
            400: {"description": "not a site file a gateway would take"},
            404: {"description": _NO_GATEWAY},
        },
    )
    async def push_config(
        request: Request,
        gateway_id: str,
        body: ConfigPushIn,
        principal: Principal = commander,
    ) -> CommandAccepted:
        """Push a whole site file: the gateway checks it, applies it and rolls back unless healthy
        within ``health_s``. Its state messages then report ``config_version``."""
        args = {"text": body.text, "version": body.version, "health_s": body.health_s}
        return await issue(request, principal, gateway_id, "config.push", args, body.ttl_s)

    def visible_ids(principal: Principal) -> list[str] | None:
        if principal.estates is None:
            return None
        return [gw for gw in service.ledger.gateways() if principal.sees(estate_of(gw))]

    def outs(rows: list[CommandRow]) -> list[CommandOut]:
        now = service.now()
        versions = service.config_versions({r.gateway for r in rows})
        return [
            command_out(r, estate=estate_of(r.gateway), now=now, config_now=versions.get(r.gateway))
            for r in rows
        ]

    @router.get("/commands", response_model=list[CommandOut])
    def list_commands(
        response: Response,
        principal: Principal = commander,
        gateway: str | None = None,
        state: Annotated[str | None, Query(description="comma-separated: " + ", ".join(STATES))] = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[CommandOut]:
        """Commands, newest first, with their state (results matched at read time)."""
        states = None if state is None else sorted({s for s in state.split(",") if s})
        if states is not None and not set(states) <= set(STATES):
            raise HTTPException(422, f"state is one or more of {', '.join(STATES)}")
        ids = visible_ids(principal)
        if gateway is not None:
            ids = [gateway] if ids is None or gateway in ids else []
        service.refresh(ids)
        rows = service.ledger.page(
            gateways=ids, states=states, before=_cursor(cursor), limit=limit + 1, now=service.now()
        )
        if len(rows) > limit:
            del rows[limit:]
            response.headers["X-Next-Cursor"] = _next(rows[-1].id)
        return outs(rows)

    @router.get(
        "/commands/{cid}", response_model=CommandOut, responses={404: {"description": "no such command"}}
    )
    async def get_command(cid: str, principal: Principal = commander) -> CommandOut:
        row = await run_in_threadpool(service.get, cid)
        if row is None or not principal.sees(estate_of(row.gateway)):
            raise HTTPException(404, "no such command")
        return (await run_in_threadpool(outs, [row]))[0]

    return router
