"""The records of web accounts: the LAN dashboard's roles and their permissions, users, sessions
and the outcome of a sign-in (``cloud_sync.webauth.accounts`` keeps them in SQLite).

``User.permissions`` is the LAN dashboard's mapping; central's console maps its own roles
(``cloud_sync.central.console.roles``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ROLES", "LoginResult", "Session", "User", "permissions_of", "refusal", "user_from_row"]

# "drill": the duty chief runs fire drills from the control room (GB 25506); audited.
_OPERATOR = frozenset({"view", "ack", "shelve", "comment", "confirm_linkage", "drill"})
_TECHNICIAN = _OPERATOR | {"write", "simulate", "commission"}
ROLES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"view"}),
    "operator": _OPERATOR,
    "technician": _TECHNICIAN,
    "admin": _TECHNICIAN | {"users", "audit", "config"},
}


def permissions_of(role: str) -> frozenset[str]:
    return ROLES.get(role, frozenset())


@dataclass(frozen=True, slots=True)
class User:
    username: str
    name: str
    phone: str
    role: str
    valid_until: float | None
    session_timeout_min: int
    max_login_attempts: int
    failed: int
    locked_at: float | None
    disabled: bool
    lang: str | None
    created: float

    @property
    def permissions(self) -> frozenset[str]:
        return permissions_of(self.role)

    def locked_until(self, lockout_s: float) -> float | None:
        """When the lock ends; None for a lock that waits for an administrator."""
        if self.locked_at is None or lockout_s <= 0:
            return None
        return self.locked_at + lockout_s

    def is_locked(self, now: float, lockout_s: float) -> bool:
        if self.locked_at is None:
            return False
        return lockout_s <= 0 or now < self.locked_at + lockout_s

    def public(self, lockout_s: float = 0.0, now: float | None = None) -> dict[str, Any]:
        """The user as the API shows it (never the hash)."""
        locked = now is not None and self.is_locked(now, lockout_s)
        return {
            "username": self.username,
            "name": self.name,
            "phone": self.phone,
            "role": self.role,
            "permissions": sorted(self.permissions),
            "lang": self.lang,
            "valid_until": self.valid_until,
            "session_timeout_min": self.session_timeout_min,
            "max_login_attempts": self.max_login_attempts,
            "disabled": self.disabled,
            "locked": locked,
            "locked_until": self.locked_until(lockout_s) if locked else None,
            "failed_attempts": self.failed,
            "created": self.created,
        }


@dataclass(frozen=True, slots=True)
class Session:
    token_hash: str
    username: str
    csrf: str
    created: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class LoginResult:
    """``status`` is ok, bad_credentials or locked: all a client is told. ``reason`` (for the
    audit log only) is bad_password, unknown_user, disabled, expired or locked."""

    status: str
    user: User | None = None
    token: str | None = None
    session: Session | None = None
    attempts_left: int | None = None
    locked_until: float | None = None
    just_locked: bool = False
    reason: str | None = None


def refusal(user: User | None, good: bool, now: float) -> str | None:
    if user is None:
        return "unknown_user"
    if not good:
        return "bad_password"
    if user.disabled:
        return "disabled"
    if user.valid_until is not None and now > user.valid_until:
        return "expired"
    return None


def user_from_row(row: tuple[Any, ...]) -> User:
    (
        username,
        name,
        phone,
        role,
        valid_until,
        timeout,
        attempts,
        failed,
        locked_at,
        disabled,
        lang,
        created,
    ) = row
    return User(
        username,
        name,
        phone,
        role,
        valid_until,
        timeout,
        attempts,
        failed,
        locked_at,
        bool(disabled),
        lang,
        created,
    )
