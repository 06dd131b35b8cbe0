"""Sign-in, sessions and permissions of the console, and the routes that log in and out.

The same rules as the LAN dashboard (docs/dashboard.md), with central's own cookies
(``ghc_session`` HttpOnly, ``ghc_csrf`` for the double submit; SameSite=Strict, Secure under
TLS): no default password — the first administrator needs the one-time setup code central
wrote to its data folder; three failed sign-ins lock the account *from that address* for 15
minutes (an administrator or ``python -m cloud_sync.central.console unlock`` clears it earlier);
every failure gets the same answer after the same work (``cloud_sync.webauth.accounts``);
sign-in is throttled per address (``cloud_sync.webauth.throttle``); every action is audited with the user
and the client's address.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from cloud_sync.central.console.context import SETUP_CODE_FILE, ConsoleContext, console_of
from cloud_sync.central.console.errors import ConsoleError
from cloud_sync.central.console.session import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from cloud_sync.central.principal import Principal
from cloud_sync.webauth.accounts import LoginResult, Session, User
from cloud_sync.webauth.setup_code import matches, remove_setup_code

__all__ = ["Caller", "audit", "client_ip", "require", "router", "user_json"]

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

router = APIRouter(prefix="/console/api")
Ctx = Annotated[ConsoleContext, Depends(console_of)]


@dataclass(frozen=True, slots=True)
class Caller:
    user: User
    session: Session
    ip: str | None
    permissions: frozenset[str]
    principal: Principal


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def audit(
    ctx: ConsoleContext,
    request: Request,
    user: str | None,
    action: str,
    target: str | None = None,
    result: str = "ok",
    detail: str | None = None,
) -> None:
    ctx.accounts.audit(
        now=ctx.clock(), user=user, ip=client_ip(request), action=action, target=target, result=result,
        detail=detail,
    )  # fmt: skip


def _caller(request: Request) -> Caller:
    ctx = console_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise ConsoleError(401, "login")
    found = ctx.accounts.session(token, now=ctx.clock())
    if isinstance(found, str):
        raise ConsoleError(401, found)
    session, user = found
    if request.method in _UNSAFE:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            audit(ctx, request, user.username, "csrf_refused", request.url.path, "refused")
            raise ConsoleError(403, "csrf")
    return Caller(user, session, client_ip(request), ctx.permissions(user), ctx.principal(user))


def require(permission: str) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency: the signed-in caller holding ``permission`` (with CSRF on a change)."""

    async def dependency(request: Request) -> Caller:
        caller = _caller(request)
        if permission not in caller.permissions:
            raise ConsoleError(403, "forbidden", permission=permission)
        return caller

    dependency.__name__ = f"require_{permission}"
    return dependency


def user_json(ctx: ConsoleContext, user: User) -> dict[str, Any]:
    estates = ctx.grants.estates_of(user.username)
    return {
        "username": user.username,
        "name": user.name,
        "role": user.role,
        "estates": sorted(estates) if estates is not None else None,
        "permissions": sorted(ctx.permissions(user)),
        "lang": user.lang,
    }


def _require_xhr(request: Request) -> None:
    # A cross-site form cannot send this header: login and setup have no CSRF token yet.
    if request.headers.get("x-requested-with") != "gatehouse":
        raise ConsoleError(403, "csrf")


def _set_cookies(ctx: ConsoleContext, response: Response, token: str, csrf: str) -> None:
    secure = ctx.secure_cookies
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", path="/", secure=secure)
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, samesite="strict", path="/", secure=secure)


def _admit(ctx: ConsoleContext, request: Request) -> str:
    """The caller's address, admitted by the per-address throttle (else 429 with Retry-After)."""
    source = client_ip(request) or "unknown"
    wait_s = ctx.throttle.admit(source, ctx.monotonic())
    if wait_s > 0:
        retry = max(1, math.ceil(wait_s))
        raise ConsoleError(429, "throttled", retry_after_s=retry, headers={"Retry-After": str(retry)})
    return source


class SetupBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(default="", max_length=64, description="the setup code central wrote at start")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(max_length=1024)
    name: str = Field(default="", max_length=200)


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class LangBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lang: Literal["zh", "en"]


@router.get("/session")
async def get_session(request: Request, ctx: Ctx) -> dict[str, Any]:
    user: dict[str, Any] | None = None
    csrf: str | None = None
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        found = ctx.accounts.session(token, now=ctx.clock())
        if not isinstance(found, str):
            user, csrf = user_json(ctx, found[1]), found[0].csrf
    return {"user": user, "csrf": csrf, "setup_needed": ctx.accounts.user_count() == 0}


@router.post("/setup", status_code=201)
async def setup(body: SetupBody, request: Request, response: Response, ctx: Ctx) -> dict[str, Any]:
    _require_xhr(request)
    if ctx.accounts.user_count() > 0:
        raise ConsoleError(409, "setup_done")
    source = _admit(ctx, request)
    failed = True
    try:
        if not matches(body.code, ctx.setup_code):
            audit(ctx, request, body.username, "setup", body.username, "refused", "wrong setup code")
            raise ConsoleError(403, "setup_code")
        try:
            user = await ctx.accounts.create_user(
                body.username,
                body.password,
                role="admin",
                now=ctx.clock(),
                name=body.name,
                only_if_first=True,
            )
        except KeyError as exc:
            raise ConsoleError(409, "setup_done") from exc
        except ValueError as exc:
            failed = False  # a short password is the administrator's typo, not a guess
            raise ConsoleError(400, "invalid", detail=str(exc)) from exc
        failed = False
    finally:
        ctx.throttle.done(source, ctx.monotonic(), failed=failed)
    ctx.setup_code = None
    remove_setup_code(ctx.data_dir, file_name=SETUP_CODE_FILE)
    audit(ctx, request, user.username, "setup", user.username)
    result = await ctx.accounts.login(body.username, body.password, now=ctx.clock(), ip=client_ip(request))
    if result.token is not None and result.session is not None:
        _set_cookies(ctx, response, result.token, result.session.csrf)
    return {"user": user_json(ctx, user), "csrf": result.session.csrf if result.session else None}


@router.post("/login")
async def login(body: LoginBody, request: Request, response: Response, ctx: Ctx) -> dict[str, Any]:
    _require_xhr(request)
    source = _admit(ctx, request)
    result: LoginResult | None = None
    try:
        result = await ctx.accounts.login(
            body.username, body.password, now=ctx.clock(), ip=client_ip(request)
        )
    finally:
        ctx.throttle.done(source, ctx.monotonic(), failed=result is None or result.status != "ok")
    if result.status == "ok":
        assert result.user is not None and result.token is not None and result.session is not None
        _set_cookies(ctx, response, result.token, result.session.csrf)
        audit(ctx, request, body.username, "login", body.username)
        return {"user": user_json(ctx, result.user), "csrf": result.session.csrf}
    if result.status == "locked":
        action = "lockout" if result.just_locked else "login_locked"
        audit(ctx, request, body.username, action, body.username, "refused", result.reason)
        raise ConsoleError(423, "locked", locked_until=result.locked_until)
    audit(ctx, request, body.username, "login_failed", body.username, "refused", result.reason)
    # one answer for a wrong password and an unknown, disabled or expired account
    raise ConsoleError(401, "bad_credentials", attempts_left=result.attempts_left)


@router.post("/logout")
async def logout(request: Request, response: Response, ctx: Ctx) -> dict[str, Any]:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        found = ctx.accounts.session(token, now=ctx.clock(), touch=False)
        if not isinstance(found, str):
            if not hmac.compare_digest(request.headers.get(CSRF_HEADER, "").encode(), found[0].csrf.encode()):
                raise ConsoleError(403, "csrf")
            ctx.accounts.logout(token)
            audit(ctx, request, found[1].username, "logout")
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return {"ok": True}


@router.post("/me/lang")
async def set_lang(
    body: LangBody, ctx: Ctx, caller: Annotated[Caller, Depends(require("view"))]
) -> dict[str, Any]:
    user = ctx.accounts.update_user(caller.user.username, lang=body.lang)
    return {"user": user_json(ctx, user)}
