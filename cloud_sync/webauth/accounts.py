"""Web accounts in SQLite: users, sessions, the audit log and login lockout (R4.4, R4.5).

Shared by the gateway's LAN dashboard (``edge.dashboard.accounts``) and central's console
(``cloud_sync.central.console``), each with its own database file and role names.
Passwords are hashed with scrypt (``cloud_sync.webauth.passwords``).
Session tokens are random; only their SHA-256 is stored, so a copy of the database does not
hand out live sessions. Queries are small and indexed, so they run on the event loop; hashing
(tens of milliseconds by design) runs in a worker thread, at most ``_HASH_SLOTS`` at a time (a
bound on memory, not a lock: the per-source throttle in the routes keeps one client from
holding more than one slot).

Sign-in failures count per account *and* client address (``login_failures``): wrong passwords
from one LAN host lock that account from that host only, so a script cannot lock the duty
officer out of the duty room's PC. Unknown, disabled and expired accounts take the same path
(the hash is checked against a dummy for an unknown name, and their failures count and lock
the same way), so every failure gets the same answer after the same work; the reason is kept
for the audit log only. (``attempts_left`` counts down from the account's own
``max_login_attempts``, the site default for an unknown name: an account given another limit
can be told apart by its count.) A user is shown as locked when some address is locked out of it;
unlocking (an administrator, ``gatehouse users unlock``, a new password) clears every address.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import structlog

from cloud_sync.errors import SyncError
from cloud_sync.webauth.account_model import (
    ROLES,
    LoginResult,
    Session,
    User,
    permissions_of,
    refusal,
    user_from_row,
)
from cloud_sync.webauth.passwords import (
    DUMMY_HASH,
    MIN_PASSWORD,
    check_password,
    hash_password,
    verify_password,
)

__all__ = [
    "MIN_PASSWORD",
    "ROLES",
    "AccountStore",
    "AccountStoreError",
    "LoginResult",
    "Session",
    "User",
    "check_password",
    "hash_password",
    "permissions_of",
    "verify_password",
]

_LOG = structlog.get_logger(__name__)

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
CREATE TABLE IF NOT EXISTS login_failures (
    username TEXT NOT NULL,
    source TEXT NOT NULL,
    failed INTEGER NOT NULL,
    locked_at REAL,
    last_at REAL NOT NULL,
    PRIMARY KEY (username, source)
);
"""
# failed / locked_at of a user: the worst over the addresses it was tried from
_USER_COLUMNS = (
    "u.username, u.name, u.phone, u.role, u.valid_until, u.session_timeout_min, u.max_login_attempts,"
    " COALESCE((SELECT max(f.failed) FROM login_failures f WHERE f.username = u.username), 0),"
    " (SELECT max(f.locked_at) FROM login_failures f WHERE f.username = u.username),"
    " u.disabled, u.lang, u.created"
)
_HASH_SLOTS = 2


class AccountStoreError(SyncError):
    """The account database cannot be opened."""


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AccountStore:
    """``roles``: the role names an account may have (default: the LAN dashboard's).
    ``open_error``: the exception raised when the database cannot be opened."""

    open_error: type[Exception] = AccountStoreError

    def __init__(
        self,
        path: Path,
        *,
        default_timeout_min: int = 30,
        default_max_attempts: int = 3,
        lockout_min: float = 15.0,
        roles: frozenset[str] = frozenset(ROLES),
    ) -> None:
        self.path = path
        self.roles = roles
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
            raise self.open_error(f"{path}: cannot open the account database: {exc}") from exc
        self._hash_slots = asyncio.Semaphore(_HASH_SLOTS)

    def close(self) -> None:
        self._db.close()

    # -- users -------------------------------------------------------------------------------

    def user_count(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM users").fetchone()
        return int(count)

    def get_user(self, username: str) -> User | None:
        row = self._db.execute(
            f"SELECT {_USER_COLUMNS} FROM users u WHERE u.username = ?", (username,)
        ).fetchone()
        return None if row is None else user_from_row(row)

    def users(self) -> list[User]:
        rows = self._db.execute(f"SELECT {_USER_COLUMNS} FROM users u ORDER BY u.username").fetchall()
        return [user_from_row(r) for r in rows]

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
        if role not in self.roles:
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
        if "role" in fields and fields["role"] not in self.roles:
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

    def unlock(self, username: str, source: str | None = None) -> int:
        """Clear the failures of ``username`` from every address (or from ``source``)."""
        if source is None:
            cur = self._db.execute("DELETE FROM login_failures WHERE username = ?", (username,))
        else:
            cur = self._db.execute(
                "DELETE FROM login_failures WHERE username = ? AND source = ?", (username, source)
            )
        return cur.rowcount

    def locked_sources(self, username: str, now: float) -> list[str]:
        rows = self._db.execute(
            "SELECT source, locked_at FROM login_failures WHERE username = ? AND locked_at IS NOT NULL",
            (username,),
        ).fetchall()
        return sorted(src for src, at in rows if self.lockout_s <= 0 or now < at + self.lockout_s)

    def purge_failures(self, now: float) -> int:
        """Forget failures (and locks that ran out) older than a day past the lockout."""
        keep_s = 86400.0 + max(self.lockout_s, 0.0)
        if self.lockout_s <= 0:  # a lock that waits for an administrator stays
            cur = self._db.execute(
                "DELETE FROM login_failures WHERE locked_at IS NULL AND last_at < ?", (now - keep_s,)
            )
        else:
            cur = self._db.execute("DELETE FROM login_failures WHERE last_at < ?", (now - keep_s,))
        return cur.rowcount

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
        self.unlock(username)
        self.drop_sessions(username)

    def admins_enabled(self) -> int:
        (count,) = self._db.execute(
            "SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0"
        ).fetchone()
        return int(count)

    # -- login and sessions ------------------------------------------------------------------

    async def login(self, username: str, password: str, *, now: float, ip: str | None) -> LoginResult:
        source = ip or "unknown"
        locked_until = self._locked_until(username, source, now)
        if locked_until is not False:
            return LoginResult("locked", locked_until=locked_until, reason="locked")
        user = self.get_user(username)
        stored = DUMMY_HASH
        if user is not None:
            (stored,) = self._db.execute(
                "SELECT pw_hash FROM users WHERE username = ?", (username,)
            ).fetchone()
        async with self._hash_slots:
            good = await asyncio.to_thread(verify_password, password, stored)
        user = self.get_user(username)  # again: it may have changed while the hash ran
        reason = refusal(user, good, now)
        if reason is not None:
            return self._failed(username, source, now, user, reason)
        assert user is not None
        self.unlock(username, source)
        token = secrets.token_urlsafe(32)
        session = Session(_token_hash(token), username, secrets.token_urlsafe(24), now, now)
        self._db.execute(
            "INSERT INTO sessions (token_hash, username, csrf, created, last_seen, ip) VALUES (?,?,?,?,?,?)",
            (session.token_hash, username, session.csrf, now, now, ip),
        )
        return LoginResult("ok", user=self.get_user(username), token=token, session=session)

    def _locked_until(self, username: str, source: str, now: float) -> float | None | bool:
        """False when ``username`` is not locked from ``source``; else when the lock ends (None:
        when an administrator unlocks it)."""
        row = self._db.execute(
            "SELECT locked_at FROM login_failures WHERE username = ? AND source = ?", (username, source)
        ).fetchone()
        if row is None or row[0] is None:
            return False
        if self.lockout_s <= 0:
            return None
        until = float(row[0]) + self.lockout_s
        return until if now < until else False

    def _failed(self, username: str, source: str, now: float, user: User | None, reason: str) -> LoginResult:
        """Count a failure of ``username`` from ``source``; lock the pair at the account's limit."""
        limit = user.max_login_attempts if user is not None else self.default_max_attempts
        row = self._db.execute(
            "SELECT failed, locked_at FROM login_failures WHERE username = ? AND source = ?",
            (username, source),
        ).fetchone()
        failed = 1 if row is None or row[1] is not None else int(row[0]) + 1  # a lock that ran out: afresh
        locked_at = now if failed >= limit else None
        self._db.execute(
            "INSERT INTO login_failures (username, source, failed, locked_at, last_at) VALUES (?,?,?,?,?)"
            " ON CONFLICT (username, source) DO UPDATE SET failed = excluded.failed,"
            " locked_at = excluded.locked_at, last_at = excluded.last_at",
            (username, source, failed, locked_at, now),
        )
        if locked_at is not None:
            until = None if self.lockout_s <= 0 else now + self.lockout_s
            return LoginResult("locked", locked_until=until, just_locked=True, reason=reason)
        return LoginResult("bad_credentials", attempts_left=limit - failed, reason=reason)

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
