"""Administrator API: user accounts (R4.4) and the audit log (R4.5)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from edge.dashboard.accounts import ROLES, User
from edge.dashboard.auth import ApiError, Caller, audit, require
from edge.dashboard.context import DashboardContext, get_context

__all__ = ["router"]

router = APIRouter(prefix="/api/admin")
Ctx = Annotated[DashboardContext, Depends(get_context)]


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str
    role: str = "viewer"
    name: str = ""
    phone: str = ""
    valid_until: float | None = Field(default=None, allow_inf_nan=False)
    session_timeout_min: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    max_login_attempts: int | None = Field(default=None, ge=1, le=20)


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str | None = None
    name: str | None = None
    phone: str | None = None
    valid_until: float | None = Field(default=None, allow_inf_nan=False)
    session_timeout_min: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    max_login_attempts: int | None = Field(default=None, ge=1, le=20)
    disabled: bool | None = None
    unlock: bool = False
    password: str | None = None


def _public(ctx: DashboardContext, user: User) -> dict[str, Any]:
    return user.public(ctx.accounts.lockout_s, ctx.now())


@router.get("/users")
async def users(ctx: Ctx, _: Annotated[Caller, Depends(require("users"))]) -> dict[str, Any]:
    return {
        "users": [_public(ctx, u) for u in ctx.accounts.users()],
        "roles": {r: sorted(p) for r, p in ROLES.items()},
    }


@router.post("/users", status_code=201)
async def create(
    body: NewUser, request: Request, ctx: Ctx, caller: Annotated[Caller, Depends(require("users"))]
) -> dict[str, Any]:
    try:
        user = await ctx.accounts.create_user(
            body.username, body.password, role=body.role, now=ctx.now(), name=body.name, phone=body.phone,
            valid_until=body.valid_until, session_timeout_min=body.session_timeout_min,
            max_login_attempts=body.max_login_attempts,
        )  # fmt: skip
    except ValueError as exc:
        raise ApiError(400, "invalid", detail=str(exc)) from exc
    except KeyError as exc:
        raise ApiError(409, "exists", username=body.username) from exc
    audit(ctx, request, caller.user.username, "user_create", user.username, "ok", f"role={user.role}")
    return {"user": _public(ctx, user)}


@router.patch("/users/{username}")
async def update(
    username: str,
    body: UserPatch,
    request: Request,
    ctx: Ctx,
    caller: Annotated[Caller, Depends(require("users"))],
) -> dict[str, Any]:
    accounts = ctx.accounts
    current = accounts.get_user(username)
    if current is None:
        raise ApiError(404, "unknown_user", username=username)
    fields = body.model_dump(exclude_unset=True, exclude={"unlock", "password"})
    # Only the expiry can be cleared (null = valid indefinitely); null elsewhere means "unchanged".
    fields = {k: v for k, v in fields.items() if v is not None or k == "valid_until"}
    # Never leave the site without an administrator who can log in.
    demoted = fields.get("role", "admin") != "admin" or fields.get("disabled") is True
    if current.role == "admin" and not current.disabled and demoted and accounts.admins_enabled() <= 1:
        raise ApiError(409, "last_admin")
    try:
        user = accounts.update_user(username, **fields)
        if body.unlock:
            accounts.unlock(username)
        if body.password is not None:
            await accounts.set_password(username, body.password)
    except ValueError as exc:
        raise ApiError(400, "invalid", detail=str(exc)) from exc
    changes = sorted(fields) + (["unlock"] if body.unlock else []) + (["password"] if body.password else [])
    audit(ctx, request, caller.user.username, "user_update", username, "ok", ",".join(changes))
    user = accounts.get_user(username) or user
    return {"user": _public(ctx, user)}


@router.get("/audit")
async def audit_log(
    ctx: Ctx,
    _: Annotated[Caller, Depends(require("audit"))],
    since: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    user: str | None = None,
    action: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> dict[str, Any]:
    return {"rows": ctx.accounts.audit_rows(since=since, user=user, action=action, limit=limit)}
