"""Console accounts (administrators with every estate) and the console's audit log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from cloud_sync.central.console.auth import Caller, audit, require
from cloud_sync.central.console.context import ConsoleContext, console_of
from cloud_sync.central.console.errors import ConsoleError
from cloud_sync.webauth.accounts import User

__all__ = ["router"]

router = APIRouter(prefix="/console/api")
Ctx = Annotated[ConsoleContext, Depends(console_of)]
Role = Literal["admin", "operator", "viewer"]
Estates = list[Annotated[str, Field(min_length=1, max_length=128)]]


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(max_length=1024)
    role: Role
    name: str = Field(default="", max_length=200)
    estates: Estates | None = Field(default=None, max_length=1000, description="None: every estate")


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    name: str | None = Field(default=None, max_length=200)
    disabled: bool | None = None
    estates: Estates | None = Field(default=None, max_length=1000)
    all_estates: bool = Field(default=False, description="lift the estate limit")


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(max_length=1024)


def _public(ctx: ConsoleContext, user: User) -> dict[str, Any]:
    now = ctx.clock()
    out = user.public(ctx.accounts.lockout_s, now)
    estates = ctx.grants.estates_of(user.username)
    out["estates"] = sorted(estates) if estates is not None else None
    out["permissions"] = sorted(ctx.permissions(user))
    out["locked_from"] = ctx.accounts.locked_sources(user.username, now)
    return out


def _full_admins(ctx: ConsoleContext) -> int:
    """Enabled administrators with every estate: the ones who can manage accounts."""
    return sum(
        1
        for u in ctx.accounts.users()
        if u.role == "admin" and not u.disabled and ctx.grants.estates_of(u.username) is None
    )


def _get(ctx: ConsoleContext, username: str) -> User:
    user = ctx.accounts.get_user(username)
    if user is None or user.role not in ("admin", "operator", "viewer"):
        raise ConsoleError(404, "no_user", username=username)
    return user


Admin = Annotated[Caller, Depends(require("users"))]


@router.get("/users")
async def list_users(ctx: Ctx, _: Admin) -> dict[str, Any]:
    return {"users": [_public(ctx, u) for u in ctx.accounts.users()]}


@router.post("/users", status_code=201)
async def create_user(body: NewUser, request: Request, ctx: Ctx, caller: Admin) -> dict[str, Any]:
    try:
        user = await ctx.accounts.create_user(
            body.username, body.password, role=body.role, now=ctx.clock(), name=body.name
        )
    except KeyError as exc:
        raise ConsoleError(409, "exists", username=body.username) from exc
    except ValueError as exc:
        raise ConsoleError(400, "invalid", detail=str(exc)) from exc
    ctx.grants.set_estates(user.username, body.estates)
    detail = f"role={body.role} estates={','.join(body.estates) if body.estates else '*'}"
    audit(ctx, request, caller.user.username, "user_create", user.username, detail=detail)
    return {"user": _public(ctx, user)}


@router.patch("/users/{username}")
async def change_user(
    username: str, body: UserChange, request: Request, ctx: Ctx, caller: Admin
) -> dict[str, Any]:
    current = _get(ctx, username)
    fields: dict[str, Any] = {}
    if body.role is not None:
        fields["role"] = body.role
    if body.name is not None:
        fields["name"] = body.name
    if body.disabled is not None:
        fields["disabled"] = int(body.disabled)
    limits = body.all_estates or body.estates is not None
    was_full_admin = (
        current.role == "admin" and not current.disabled and ctx.grants.estates_of(username) is None
    )
    stays_full_admin = (
        (body.role or current.role) == "admin"
        and not (body.disabled if body.disabled is not None else current.disabled)
        and (body.all_estates or (body.estates is None and ctx.grants.estates_of(username) is None))
    )
    if was_full_admin and not stays_full_admin and _full_admins(ctx) <= 1:
        raise ConsoleError(409, "last_admin")
    try:
        user = ctx.accounts.update_user(username, **fields)
    except ValueError as exc:
        raise ConsoleError(400, "invalid", detail=str(exc)) from exc
    if limits:
        ctx.grants.set_estates(username, None if body.all_estates else body.estates)
    if (limits or "role" in fields) and username != caller.user.username:
        # a changed grant takes effect at once: the account signs in again (open streams end)
        ctx.accounts.drop_sessions(username)
    audit(
        ctx,
        request,
        caller.user.username,
        "user_change",
        username,
        detail=body.model_dump_json(exclude_none=True),
    )
    return {"user": _public(ctx, user)}


@router.post("/users/{username}/password")
async def set_password(
    username: str, body: NewPassword, request: Request, ctx: Ctx, caller: Admin
) -> dict[str, Any]:
    _get(ctx, username)
    try:
        await ctx.accounts.set_password(username, body.password)
    except ValueError as exc:
        raise ConsoleError(400, "invalid", detail=str(exc)) from exc
    audit(ctx, request, caller.user.username, "password_reset", username)
    return {"user": _public(ctx, _get(ctx, username))}


@router.post("/users/{username}/unlock")
async def unlock(username: str, request: Request, ctx: Ctx, caller: Admin) -> dict[str, Any]:
    _get(ctx, username)
    cleared = ctx.accounts.unlock(username)
    audit(ctx, request, caller.user.username, "unlock", username, detail=f"{cleared} address(es)")
    return {"user": _public(ctx, _get(ctx, username))}


@router.get("/audit")
async def audit_log(
    ctx: Ctx,
    _: Annotated[Caller, Depends(require("console_audit"))],
    user: str | None = None,
    action: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> dict[str, Any]:
    return {"items": ctx.accounts.audit_rows(user=user, action=action, limit=limit)}
