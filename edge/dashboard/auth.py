"""Sessions, CSRF and permissions for the dashboard API, and the routes that log in and out.

* The session cookie ``gh_session`` is HttpOnly and SameSite=Strict (Secure under TLS).
* CSRF is a double submit: ``gh_csrf`` (readable by the page) must come back in the
  ``X-CSRF-Token`` header of every state-changing request. Login and setup have no session yet;
  they require ``X-Requested-With: gatehouse``, which a cross-site form cannot send.
* Every operation is written to the audit log with the user and the client's IP.
* Sign-in and setup are throttled per client address (``edge.dashboard.throttle``: one attempt
  in flight, a growing wait after a few failures, 429 with ``Retry-After``), and every failed
  sign-in gets the same answer, whatever the reason (``edge.dashboard.accounts``).
* Setup needs the one-time code that the gateway printed at start (``edge.dashboard.setup_code``).
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from edge.dashboard.accounts import LoginResult, Session, User
from edge.dashboard.context import DashboardContext, context_of, get_context
from edge.dashboard.setup_code import matches, remove_setup_code

__all__ = ["ApiError", "Caller", "audit", "client_ip", "require", "router"]

_LOG = structlog.get_logger(__name__)

SESSION_COOKIE = "gh_session"
CSRF_COOKIE = "gh_csrf"
CSRF_HEADER = "x-csrf-token"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

router = APIRouter(prefix="/api")
Ctx = Annotated[DashboardContext, Depends(get_context)]


class ApiError(Exception):
    """Answered as ``status`` with the JSON ``body`` (``{"error": ...}``) and ``headers``."""

    def __init__(
        self, status: int, error: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(error)
        self.status = status
        self.body = {"error": error, **extra}
        self.headers = headers


@dataclass(frozen=True, slots=True)
class Caller:
    user: User
    session: Session
    ip: str | None


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def audit(
    ctx: DashboardContext,
    request: Request,
    user: str | None,
    action: str,
    target: str | None = None,
    result: str = "ok",
    detail: str | None = None,
) -> None:
    ctx.accounts.audit(
        now=ctx.now(),
        user=user,
        ip=client_ip(request),
        action=action,
        target=target,
        result=result,
        detail=detail,
    )


def _caller(request: Request, *, touch: bool = True) -> Caller:
    ctx = context_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise ApiError(401, "login")
    found = ctx.accounts.session(token, now=ctx.now(), touch=touch)
    if isinstance(found, str):
        raise ApiError(401, found)
    session, user = found
    if request.method in _UNSAFE:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            audit(ctx, request, user.username, "csrf_refused", request.url.path, "refused")
            raise ApiError(403, "csrf")
    return Caller(user, session, client_ip(request))


def require(permission: str) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency: the logged-in caller, with a valid CSRF token when it changes something,
    holding ``permission``."""

    async def dependency(request: Request) -> Caller:
        caller = _caller(request)
        if permission not in caller.user.permissions:
            raise ApiError(403, "forbidden", permission=permission)
        return caller

    dependency.__name__ = f"require_{permission}"
    return dependency


def _require_xhr(request: Request) -> None:
    if request.headers.get("x-requested-with") != "gatehouse":
        raise ApiError(403, "csrf")


def _set_cookies(ctx: DashboardContext, response: Response, token: str, csrf: str) -> None:
    secure = ctx.config.https
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", path="/", secure=secure)
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, samesite="strict", path="/", secure=secure)


def _version() -> str:
    try:
        return metadata.version("gatehouse")
    except metadata.PackageNotFoundError:
        return "dev"


def site_info(ctx: DashboardContext) -> dict[str, Any]:
    info = ctx.gateway.site.config.site
    return {"id": info.id, "name": info.name, "name_zh": info.name_zh}


def user_json(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "name": user.name,
        "role": user.role,
        "permissions": sorted(user.permissions),
        "lang": user.lang,
    }


# -- routes ------------------------------------------------------------------------------------


class SetupBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(default="", max_length=64, description="the setup code printed at start")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(max_length=1024)
    name: str = Field(default="", max_length=200)
    phone: str = Field(default="", max_length=64)


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
        found = ctx.accounts.session(token, now=ctx.now())
        if not isinstance(found, str):
            user, csrf = user_json(found[1]), found[0].csrf
    return {
        "user": user,
        "csrf": csrf,
        "setup_needed": ctx.accounts.user_count() == 0,
        "site": site_info(ctx),
        "version": _version(),
    }


def _admit(ctx: DashboardContext, request: Request) -> str:
    """The caller's address, admitted by the per-source throttle (else 429 with Retry-After)."""
    source = client_ip(request) or "unknown"
    wait_s = ctx.throttle.admit(source, ctx.clock.monotonic())
    if wait_s > 0:
        retry = max(1, math.ceil(wait_s))
        raise ApiError(429, "throttled", retry_after_s=retry, headers={"Retry-After": str(retry)})
    return source


@router.post("/setup", status_code=201)
async def setup(body: SetupBody, request: Request, response: Response, ctx: Ctx) -> dict[str, Any]:
    _require_xhr(request)
    if ctx.accounts.user_count() > 0:
        raise ApiError(409, "setup_done")
    source = _admit(ctx, request)
    failed = True
    try:
        if not matches(body.code, ctx.setup_code):
            audit(ctx, request, body.username, "setup", body.username, "refused", "wrong setup code")
            raise ApiError(403, "setup_code")
        try:
            user = await ctx.accounts.create_user(
                body.username, body.password, role="admin", now=ctx.now(), name=body.name, phone=body.phone,
                only_if_first=True,
            )  # fmt: skip
        except KeyError as exc:
            raise ApiError(409, "setup_done") from exc
        except ValueError as exc:
            failed = False  # a short password is the administrator's typo, not a guess
            raise ApiError(400, "invalid", detail=str(exc)) from exc
        failed = False
    finally:
        ctx.throttle.done(source, ctx.clock.monotonic(), failed=failed)
    ctx.setup_code = None
    remove_setup_code(ctx.gateway.site.data_dir)
    audit(ctx, request, user.username, "setup", user.username)
    # Log the new administrator in straight away.
    result = await ctx.accounts.login(body.username, body.password, now=ctx.now(), ip=client_ip(request))
    if result.token is not None and result.session is not None:
        _set_cookies(ctx, response, result.token, result.session.csrf)
    return {"user": user_json(user), "csrf": result.session.csrf if result.session else None}


@router.post("/login")
async def login(body: LoginBody, request: Request, response: Response, ctx: Ctx) -> dict[str, Any]:
    _require_xhr(request)
    source = _admit(ctx, request)
    result: LoginResult | None = None
    try:
        result = await ctx.accounts.login(body.username, body.password, now=ctx.now(), ip=client_ip(request))
    finally:
        ctx.throttle.done(source, ctx.clock.monotonic(), failed=result is None or result.status != "ok")
    if result.status == "ok":
        assert result.user is not None and result.token is not None and result.session is not None
        _set_cookies(ctx, response, result.token, result.session.csrf)
        audit(ctx, request, body.username, "login", body.username)
        return {"user": user_json(result.user), "csrf": result.session.csrf}
    if result.status == "locked":
        # The attempt that locks the account is logged as a lockout; later ones as refused.
        action = "lockout" if result.just_locked else "login_locked"
        audit(ctx, request, body.username, action, body.username, "refused", result.reason)
        # the same for every name, known or not: locks count per name and address alike
        raise ApiError(423, "locked", locked_until=result.locked_until)
    audit(ctx, request, body.username, "login_failed", body.username, "refused", result.reason)
    # one answer for a wrong password, an unknown, disabled or expired account (no enumeration)
    raise ApiError(401, "bad_credentials", attempts_left=result.attempts_left)


@router.post("/logout")
async def logout(request: Request, response: Response, ctx: Ctx) -> dict[str, Any]:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        found = ctx.accounts.session(token, now=ctx.now(), touch=False)
        if not isinstance(found, str):
            if not hmac.compare_digest(request.headers.get(CSRF_HEADER, "").encode(), found[0].csrf.encode()):
                raise ApiError(403, "csrf")
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
    return {"user": user_json(user)}


async def session_caller(request: Request) -> Caller:
    """The caller of a long-lived stream (no permission beyond being logged in)."""
    return _caller(request)


def still_valid(ctx: DashboardContext, caller: Caller) -> bool:
    """Whether a stream's session is still alive (checked without counting as activity)."""
    found = ctx.accounts.session_by_hash(caller.session.token_hash, now=ctx.now())
    return not isinstance(found, str)
