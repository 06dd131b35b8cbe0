"""Trust routes.

Public (no bearer token: the gateway has none yet; the app's body limit still applies):

* ``POST /api/v1/enroll`` — a one-time token and public keys → certificate and pins;
* ``POST /api/v1/enroll/renew`` — the same, authenticated by the gateway's current key.

A body that does not parse answers 400 (not FastAPI's usual 422: the wire contract says 400),
a refusal 403 ``{"error", "reason"}``.

Administration (``trust`` scope, and a principal limited to some estates is refused: it could
otherwise enrol a gateway into an estate it does not see): tokens, the trusted gateways,
revocation, the trust audit.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from cloud_sync.central.commands.auth import principal_dependency
from cloud_sync.central.config import ApiToken
from cloud_sync.central.principal import Principal
from cloud_sync.central.trust.models import (
    AuditOut,
    EnrollIn,
    GrantOut,
    KeyOut,
    RefusalOut,
    RenewIn,
    RevokeIn,
    RevokeOut,
    TokenIn,
    TokenIssuedOut,
    TokenOut,
    TrustGatewayOut,
)
from cloud_sync.central.trust.protocol import MalformedRequest
from cloud_sync.central.trust.service import TrustError, TrustRefused, TrustService

__all__ = ["enroll_command", "enrolment_router", "trust_router"]

_REFUSED: dict[int | str, dict[str, Any]] = {
    400: {"description": "malformed request (a CSR or key that does not parse)"},
    403: {"model": RefusalOut, "description": "refused (audited with the source address)"},
}


class _BadRequestRoute(APIRoute):
    """Validation errors answer 400 on the enrolment routes."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return JSONResponse(
                    {"error": "malformed", "detail": jsonable_encoder(exc.errors())}, status_code=400
                )

        return route


def _source(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def enroll_command(base_url: str, token: str) -> str:
    return f"gatehouse enroll {base_url.rstrip('/')} {token}"


def enrolment_router(
    service: TrustService, *, after_change: Callable[[], object] = lambda: None
) -> APIRouter:
    router = APIRouter(prefix="/api/v1/enroll", tags=["enrolment"], route_class=_BadRequestRoute)

    def refused(exc: TrustRefused) -> JSONResponse:
        return JSONResponse({"error": exc.error, "reason": exc.reason}, status_code=403)

    @router.post("", response_model=GrantOut, responses=_REFUSED, summary="Enrol with a one-time token")
    async def enroll(request: Request, body: EnrollIn) -> Any:
        try:
            grant = await run_in_threadpool(
                service.enroll,
                token=body.token,
                csr=body.csr,
                signing_key=body.signing_key,
                e2e_key=body.e2e_key,
                source=_source(request),
            )
        except MalformedRequest as exc:
            return JSONResponse({"error": "malformed", "detail": str(exc)}, status_code=400)
        except TrustRefused as exc:
            return refused(exc)
        await run_in_threadpool(after_change)
        return grant

    @router.post("/renew", response_model=GrantOut, responses=_REFUSED, summary="Renew certificate and keys")
    async def renew(request: Request, body: RenewIn) -> Any:
        try:
            grant = await run_in_threadpool(
                service.renew,
                gateway_id=body.gateway_id,
                kid=body.kid,
                at=body.at,
                csr=body.csr,
                signing_key=body.signing_key,
                e2e_key=body.e2e_key,
                signature=body.signature,
                source=_source(request),
            )
        except MalformedRequest as exc:
            return JSONResponse({"error": "malformed", "detail": str(exc)}, status_code=400)
        except TrustRefused as exc:
            return refused(exc)
        await run_in_threadpool(after_change)
        return grant

    return router


def trust_router(
    service: TrustService,
    *,
    tokens: Sequence[ApiToken],
    after_change: Callable[[], object] = lambda: None,
    public_url: str | None = None,
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["trust"])
    authenticated = Depends(principal_dependency(tokens, "trust"))

    def trustee(principal: Principal = authenticated) -> Principal:
        if principal.estates is not None:
            raise HTTPException(403, "managing trust needs a principal that sees every estate")
        return principal

    # A default rather than Annotated: postponed annotations cannot see this local.
    admin = Depends(trustee)

    def fail(exc: TrustError) -> HTTPException:
        return HTTPException(exc.status, exc.detail)

    @router.post(
        "/enrollment-tokens", response_model=TokenIssuedOut, status_code=201, summary="Issue a token"
    )
    def create_token(request: Request, body: TokenIn, principal: Principal = admin) -> TokenIssuedOut:
        try:
            issued = service.issue_token(
                body.gateway_id,
                estate=body.estate,
                name=body.name,
                expires_in_s=body.expires_in_s,
                by=principal.name,
                source=_source(request),
            )
        except TrustError as exc:
            raise fail(exc) from exc
        base = public_url or str(request.base_url)
        return TokenIssuedOut(
            token=issued.token,
            gateway_id=issued.gateway_id,
            expires_at=issued.expires_at,
            enroll_command=enroll_command(base, issued.token),
        )

    @router.get("/enrollment-tokens", response_model=list[TokenOut], summary="Tokens issued (no secrets)")
    def list_tokens(
        principal: Principal = admin, limit: Annotated[int, Query(ge=1, le=1000)] = 200
    ) -> list[TokenOut]:
        now = service.now()
        return [
            TokenOut(
                gateway_id=t.gateway_id,
                estate=t.estate,
                name=t.name,
                created_at=t.created_at,
                created_by=t.created_by,
                expires_at=t.expires_at,
                used_at=t.used_at,
                used_from=t.used_from,
                state="used" if t.used_at is not None else "expired" if t.expires_at < now else "pending",
            )
            for t in service.store.tokens(limit=limit)
        ]

    @router.get(
        "/trust/gateways", response_model=list[TrustGatewayOut], summary="Gateways enrolled with tokens"
    )
    def list_gateways(principal: Principal = admin) -> list[TrustGatewayOut]:
        keys: dict[str, list[KeyOut]] = {}
        for k in service.store.signing_keys():
            keys.setdefault(k.gateway_id, []).append(
                KeyOut(kid=k.kid, added_at=k.added_at, valid_until=k.valid_until)
            )
        return [
            TrustGatewayOut(
                id=gw.id,
                estate=gw.estate,
                name=gw.name,
                status="revoked" if gw.revoked else "enrolled",
                enrolled_at=gw.enrolled_at,
                renewed_at=gw.renewed_at,
                revoked_at=gw.revoked_at,
                revoked_by=gw.revoked_by,
                revoked_reason=gw.revoked_reason,
                keys=keys.get(gw.id, []),
                cert_serial=gw.cert_serial,
                cert_not_after=gw.cert_not_after,
                e2e=gw.encrypt != "off",
                encrypt=gw.encrypt,
            )
            for gw in service.store.gateways()
        ]

    @router.post(
        "/gateways/{gateway_id}/revoke",
        response_model=RevokeOut,
        summary="Revoke a gateway",
        description="Sends the gateway a signed `gateway.revoked` command first (when wired), then "
        "rejects its batches, removes its ACL block and password line, puts its certificates in the "
        "CRL and reloads the broker.",
    )
    async def revoke(
        request: Request, gateway_id: str, body: RevokeIn, principal: Principal = admin
    ) -> RevokeOut:
        try:
            result = await service.revoke(
                gateway_id, reason=body.reason, by=principal.name, source=_source(request)
            )
        except TrustError as exc:
            raise fail(exc) from exc
        await run_in_threadpool(after_change)
        return RevokeOut(
            gateway_id=result.gateway_id,
            revoked_at=result.revoked_at,
            broker_reloaded=None if result.broker is None else result.broker.reloaded,
            broker_detail="" if result.broker is None else result.broker.detail,
        )

    @router.get("/trust/audit", response_model=list[AuditOut], summary="Trust audit log, newest first")
    def audit(
        principal: Principal = admin,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        before: Annotated[int | None, Query(ge=1, description="only entries with a smaller id")] = None,
    ) -> list[AuditOut]:
        return [
            AuditOut(
                id=r.id,
                at=r.at,
                event=r.event,
                gateway_id=r.gateway_id,
                actor=r.actor,
                source=r.source,
                reason=r.reason,
                detail=r.detail,
            )
            for r in service.store.audit_rows(limit=limit, before=before)
        ]

    return router
