"""Dashboard accounts in SQLite: users, sessions, the audit log and login lockout (R4.4, R4.5).

Passwords are hashed with scrypt (memory-hard; ``n=2**14, r=8, p=1``, 16-byte salt), stored as
``scrypt$n$r$p$salt$hash`` so the parameters can be raised later without breaking old hashes.
Session tokens are random; only their SHA-256 is stored, so a copy of the database does not
hand out live sessions. Queries are small and indexed, so they run on the event loop; hashing
(tens of milliseconds by design) runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from edge.errors import StorageError

__all__ = [
    "ROLES",
    "AccountStore",
    "LoginResult",
    "Session",
    "User",
    "hash_password",
    "permissions_of",
    "verify_password",
]

_LOG = structlog.get_logger(__name__)

# "drill": the duty chief runs fire drills from the control room (GB 25506); audited.
_OPERATOR = frozenset({"view", "ack", "shelve", "comment", "confirm_linkage", "drill"})
_TECHNICIAN = _OPERATOR | {"write", "simulate", "commission"}
ROLES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"view"}),
    "operator": _OPERATOR,
    "technician": _TECHNICIAN,
    "admin": _TECHNICIAN | {"users", "audit", "config"},
}
MIN_PASSWORD = 8
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL,
    pw_hash TEXT NOT NULL,
    valid_until REAL,
    session_timeout_min INTEGER NOT NULL,
    max_login_attempts INTEGER NOT NULL,
    failed INTEGER NOT NULL DEFAULT 0,
    locked_at REAL,
    disabled INTEGER NOT NULL DEFAULT 0,
    lang TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created REAL NOT NULL,
    last_seen REAL NOT NULL,
    ip TEXT
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    username TEXT,
    ip TEXT,
    action TEXT NOT NULL,
    target TEXT,
    result TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts);
"""
_USER_COLUMNS = (
    "username, name, phone, role, valid_until, session_timeout_min, max_login_attempts, failed,"
    " locked_at, disabled, lang, created"
)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, maxmem=64 * 2**20, dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=128 * 2**20,
            dklen=len(expected),
        )
    except ValueError:
        return False  # a malformed stored hash never matches
    return hmac.compare_digest(got, expected)


# A hash to check unknown user names against, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(12))


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
    """``status`` is one of ok, bad_credentials, locked, expired, disabled."""

    status: str
    user: User | None = None
    token: str | None = None
    session: Session | None = None
    attempts_left: int | None = None
    locked_until: float | None = None
    just_locked: bool = False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AccountStore:
    def __init__(
        self,
        path: Path,
        *,
        default_timeout_min: int = 30,
        default_max_attempts: int = 3,
        lockout_min: float = 15.0,
    ) -> None:
        self.path = path
        self.default_timeout_min = default_timeout_min
        self.default_max_attempts = default_max_attempts
        self.lockout_s = lockout_min * 60.0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"{path}: cannot open the dashboard database: {exc}") from exc
        # Serialises the read-modify-write of a login attempt against concurrent attempts.
        self._login_lock = asyncio.Lock()

    def close(self) -> None:
        self._db.close()

    # -- users -------------------------------------------------------------------------------

    def user_count(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM users").fetchone()
        return int(count)

    def get_user(self, username: str) -> User | None:
        row = self._db.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?", (username,)
        ).fetchone()
        return None if row is None else _user(row)

    def users(self) -> list[User]:
        rows = self._db.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username").fetchall()
        return [_user(r) for r in rows]

    async def create_user(
        self,
        username: str,
        password: str,
        *,
        role: str,
        now: float,
        name: str = "",
        phone: str = "",
        valid_until: float | None = None,
        session_timeout_min: int | None = None,
        max_login_attempts: int | None = None,
        only_if_first: bool = False,
    ) -> User:
        """Raises ``ValueError`` for a bad role or password, ``KeyError`` if the name is taken
        (or, with ``only_if_first``, if any user exists already)."""
        check_password(password)
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        if not username or len(username) > 64 or any(c.isspace() for c in username):
            raise ValueError("a user name is 1 to 64 characters without spaces")
        pw_hash = await asyncio.to_thread(hash_password, password)
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                if only_if_first and self.user_count() > 0:
                    raise KeyError("setup already done")
                self._db.execute(
                    "INSERT INTO users (username, name, phone, role, pw_hash, valid_until,"
                    " session_timeout_min, max_login_attempts, created) VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        username,
                        name,
                        phone,
                        role,
                        pw_hash,
                        valid_until,
                        session_timeout_min or self.default_timeout_min,
                        max_login_attempts or self.default_max_attempts,
                        now,
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise KeyError(f"user {username!r} exists") from exc
        user = self.get_user(username)
        assert user is not None
        return user

    def update_user(self, username: str, **fields: Any) -> User:
        """Set columns of a user (name, phone, role, valid_until, session_timeout_min,
        max_login_attempts, disabled, lang). Raises ``KeyError`` for an unknown user."""
        allowed = {"name", "phone", "role", "valid_until", "session_timeout_min", "max_login_attempts",
                   "disabled", "lang"}  # fmt: skip
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"cannot change {sorted(unknown)}")
        if "role" in fields and fields["role"] not in ROLES:
            raise ValueError(f"unknown role {fields['role']!r}")
        if fields:
            assignments = ", ".join(f"{k} = ?" for k in fields)
            cur = self._db.execute(
                f"UPDATE users SET {assignments} WHERE username = ?", (*fields.values(), username)
            )
            if cur.rowcount == 0:
                raise KeyError(username)
            if fields.get("disabled"):
                self.drop_sessions(username)
        user = self.get_user(username)
        if user is None:
            raise KeyError(username)
        return user

    def unlock(self, username: str) -> None:
        self._db.execute("UPDATE users SET failed = 0, locked_at = NULL WHERE username = ?", (username,))

    async def set_password(self, username: str, password: str) -> None:
        """Set a new password, unlock the account and end its sessions."""
        check_password(password)
        pw_hash = await asyncio.to_thread(hash_password, password)
        cur = self._db.execute(
            "UPDATE users SET pw_hash = ?, failed = 0, locked_at = NULL WHERE username = ?",
            (pw_hash, username),
        )
        if cur.rowcount == 0:
            raise KeyError(username)
        self.drop_sessions(username)

    def admins_enabled(self) -> int:
        (count,) = self._db.execute(
            "SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0"
        ).fetchone()
        return int(count)

    # -- login and sessions ------------------------------------------------------------------

    async def login(self, username: str, password: str, *, now: float, ip: str | None) -> LoginResult:
        async with self._login_lock:
            user = self.get_user(username)
            if user is None:
                await asyncio.to_thread(verify_password, password, _DUMMY_HASH)
                return LoginResult("bad_credentials", attempts_left=self.default_max_attempts - 1)
            if user.disabled:
                return LoginResult("disabled", user=user)
            if user.valid_until is not None and now > user.valid_until:
                return LoginResult("expired", user=user)
            if user.is_locked(now, self.lockout_s):
                return LoginResult("locked", user=user, locked_until=user.locked_until(self.lockout_s))
            failed = 0 if user.locked_at is not None else user.failed  # a lock that ran out starts afresh
            (stored,) = self._db.execute(
                "SELECT pw_hash FROM users WHERE username = ?", (username,)
            ).fetchone()
            if not await asyncio.to_thread(verify_password, password, stored):
                failed += 1
                if failed >= user.max_login_attempts:
                    self._db.execute(
                        "UPDATE users SET failed = ?, locked_at = ? WHERE username = ?",
                        (failed, now, username),
                    )
                    until = None if self.lockout_s <= 0 else now + self.lockout_s
                    return LoginResult("locked", user=user, locked_until=until, just_locked=True)
                self._db.execute(
                    "UPDATE users SET failed = ?, locked_at = NULL WHERE username = ?", (failed, username)
                )
                return LoginResult(
                    "bad_credentials", user=user, attempts_left=user.max_login_attempts - failed
                )
            self._db.execute("UPDATE users SET failed = 0, locked_at = NULL WHERE username = ?", (username,))
            token = secrets.token_urlsafe(32)
            session = Session(_token_hash(token), username, secrets.token_urlsafe(24), now, now)
            self._db.execute(
                "INSERT INTO sessions (token_hash, username, csrf, created, last_seen, ip)"
                " VALUES (?,?,?,?,?,?)",
                (session.token_hash, username, session.csrf, now, now, ip),
            )
            return LoginResult("ok", user=self.get_user(username), token=token, session=session)

    def session(self, token: str, *, now: float, touch: bool = True) -> tuple[Session, User] | str:
        """The live session and its user, or why not: "login" (unknown) or "session" (timed out,
        or the account became unusable)."""
        return self.session_by_hash(_token_hash(token), now=now, touch=touch)

    def session_by_hash(
        self, token_hash: str, *, now: float, touch: bool = False
    ) -> tuple[Session, User] | str:
        row = self._db.execute(
            "SELECT token_hash, username, csrf, created, last_seen FROM sessions WHERE token_hash = ?",
            (token_hash,),
        ).fetchone()
        if row is None:
            return "login"
        session = Session(*row)
        user = self.get_user(session.username)
        expired = user is None or now - session.last_seen > user.session_timeout_min * 60.0
        unusable = user is None or user.disabled or (user.valid_until is not None and now > user.valid_until)
        if expired or unusable:
            self._db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))
            return "session"
        assert user is not None
        if touch:
            self._db.execute("UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (now, token_hash))
        return session, user

    def logout(self, token: str) -> None:
        self._db.execute("DELETE FROM sessions WHERE token_hash = ?", (_token_hash(token),))

    def drop_sessions(self, username: str) -> None:
        self._db.execute("DELETE FROM sessions WHERE username = ?", (username,))

    def purge_sessions(self, now: float) -> int:
        """Delete sessions idle past their user's timeout (they would be refused anyway)."""
        cur = self._db.execute(
            "DELETE FROM sessions WHERE token_hash IN (SELECT s.token_hash FROM sessions s JOIN users u"
            " ON u.username = s.username WHERE ? - s.last_seen > u.session_timeout_min * 60.0)",
            (now,),
        )
        return cur.rowcount

    # -- audit -------------------------------------------------------------------------------

    def audit(
        self,
        *,
        now: float,
        user: str | None,
        ip: str | None,
        action: str,
        target: str | None = None,
        result: str = "ok",
        detail: str | None = None,
    ) -> None:
        self._db.execute(
            "INSERT INTO audit (ts, username, ip, action, target, result, detail) VALUES (?,?,?,?,?,?,?)",
            (now, user, ip, action, target, result, detail),
        )
        _LOG.info("dashboard.audit", user=user, ip=ip, action=action, target=target, result=result)

    def purge_audit(self, before: float) -> int:
        cur = self._db.execute("DELETE FROM audit WHERE ts < ?", (before,))
        return cur.rowcount

    def audit_rows(
        self,
        *,
        since: float | None = None,
        user: str | None = None,
        action: str | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        where: list[str] = []
        args: list[Any] = []
        if since is not None:
            where.append("ts >= ?")
            args.append(since)
        if user:
            where.append("username = ?")
            args.append(user)
        if action:
            where.append("action = ?")
            args.append(action)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._db.execute(
            f"SELECT id, ts, username, ip, action, target, result, detail FROM audit {clause}"
            " ORDER BY id DESC LIMIT ?",
            (*args, max(1, min(limit, 10_000))),
        ).fetchall()
        keys = ("id", "ts", "user", "ip", "action", "target", "result", "detail")
        return [dict(zip(keys, row, strict=True)) for row in rows]


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password has at least {MIN_PASSWORD} characters")


def _user(row: tuple[Any, ...]) -> User:
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
