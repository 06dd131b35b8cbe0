"""``trust.db``: enrolment tokens, enrolled gateways, their signing keys and certificates, the
trust audit log. SQLite beside ``console.db`` (``console_data_dir``), one file per central node.

Every write also bumps ``meta.generation`` in the same transaction. Central's processes poll
that one integer (:class:`cloud_sync.central.trust.watch.TrustWatcher`) and reload the registry
when it moves, so a revocation made by ``gatehouse trust revoke`` (another process, another
connection) reaches ingest within a second without a restart. ``PRAGMA data_version`` would
miss the writes made through the poller's own connection; a counter in a row sees them all.

Only a SHA-256 of each token is kept: the token itself is shown once, when it is issued.
Certificate serials are stored as decimal text (they are up to 159 bits, beyond SQLite integers).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cloud_sync.errors import CentralStoreError

__all__ = [
    "SCHEMA_VERSION",
    "TRUST_DB",
    "AuditRow",
    "GatewayRow",
    "KeyRow",
    "TokenRow",
    "TrustStore",
]

TRUST_DB: Final = "trust.db"

# Each entry moves the schema from its index to index + 1 (PRAGMA user_version).
_MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        generation INTEGER NOT NULL
    );
    INSERT INTO meta (id, generation) VALUES (1, 0);
    CREATE TABLE tokens (
        digest TEXT PRIMARY KEY,
        gateway_id TEXT NOT NULL,
        estate TEXT,
        name TEXT,
        created_at REAL NOT NULL,
        created_by TEXT NOT NULL,
        expires_at REAL NOT NULL,
        used_at REAL,
        used_from TEXT
    );
    CREATE INDEX tokens_created ON tokens (created_at);
    CREATE TABLE gateways (
        id TEXT PRIMARY KEY,
        estate TEXT,
        name TEXT,
        status TEXT NOT NULL CHECK (status IN ('enrolled', 'revoked')),
        enrolled_at REAL NOT NULL,
        renewed_at REAL,
        last_renew_at REAL,
        revoked_at REAL,
        revoked_by TEXT,
        revoked_reason TEXT,
        cert_serial TEXT,
        cert_not_after REAL,
        e2e_key TEXT,
        encrypt TEXT NOT NULL,
        password_line TEXT
    );
    CREATE TABLE certificates (
        serial TEXT PRIMARY KEY,
        gateway_id TEXT NOT NULL REFERENCES gateways (id),
        issued_at REAL NOT NULL,
        not_after REAL NOT NULL
    );
    CREATE INDEX certificates_gateway ON certificates (gateway_id);
    CREATE TABLE signing_keys (
        gateway_id TEXT NOT NULL REFERENCES gateways (id),
        kid TEXT NOT NULL,
        pem TEXT NOT NULL,
        added_at REAL NOT NULL,
        valid_until REAL,
        PRIMARY KEY (gateway_id, kid)
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        event TEXT NOT NULL,
        gateway_id TEXT,
        actor TEXT,
        source TEXT,
        reason TEXT,
        detail TEXT
    );
    """,
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)


@dataclass(frozen=True, slots=True)
class TokenRow:
    digest: str
    gateway_id: str
    estate: str | None
    name: str | None
    created_at: float
    created_by: str
    expires_at: float
    used_at: float | None
    used_from: str | None


@dataclass(frozen=True, slots=True)
class GatewayRow:
    id: str
    estate: str | None
    name: str | None
    status: str  # enrolled | revoked
    enrolled_at: float
    renewed_at: float | None
    last_renew_at: float | None
    revoked_at: float | None
    revoked_by: str | None
    revoked_reason: str | None
    cert_serial: str | None
    cert_not_after: float | None
    e2e_key: str | None
    encrypt: str
    password_line: str | None

    @property
    def revoked(self) -> bool:
        return self.status == "revoked"


@dataclass(frozen=True, slots=True)
class KeyRow:
    gateway_id: str
    kid: str
    pem: str
    added_at: float
    valid_until: float | None  # None: the current key; else accepted until then (a retired key)


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: float
    event: str
    gateway_id: str | None
    actor: str | None
    source: str | None
    reason: str | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate central just signed and the keys that go with it (enrolment or renewal)."""

    serial: int
    not_after: float
    kid: str
    signing_pem: str
    e2e_pem: str
    password_line: str | None


class TrustStore:
    """Thread-safe (one connection, one lock); every method is one short transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.Error as exc:
            raise CentralStoreError(f"{path}: cannot open the trust store: {exc}") from exc
        self._lock = threading.Lock()

    def _migrate(self) -> None:
        version: int = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise CentralStoreError(
                f"{self.path} has schema {version}, newer than this central ({SCHEMA_VERSION})"
            )
        for index in range(version, SCHEMA_VERSION):
            # executescript commits first; the script and the version move together.
            self._db.executescript(
                f"BEGIN IMMEDIATE;\n{_MIGRATIONS[index]}\nPRAGMA user_version = {index + 1};\nCOMMIT;"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("UPDATE meta SET generation = generation + 1 WHERE id = 1")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise CentralStoreError(f"{self.path}: {exc}") from exc

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise CentralStoreError(f"{self.path}: {exc}") from exc

    # -- change detection --------------------------------------------------------------------

    def generation(self) -> int:
        value: int = self._read("SELECT generation FROM meta WHERE id = 1")[0][0]
        return value

    # -- tokens ------------------------------------------------------------------------------

    def add_token(self, row: TokenRow, *, audit: AuditRow) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO tokens (digest, gateway_id, estate, name, created_at, created_by, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    row.digest,
                    row.gateway_id,
                    row.estate,
                    row.name,
                    row.created_at,
                    row.created_by,
                    row.expires_at,
                ),
            )
            _insert_audit(db, audit)

    def token(self, digest: str) -> TokenRow | None:
        rows = self._read("SELECT * FROM tokens WHERE digest = ?", (digest,))
        return TokenRow(**dict(rows[0])) if rows else None

    def tokens(self, *, limit: int = 200) -> list[TokenRow]:
        rows = self._read("SELECT * FROM tokens ORDER BY created_at DESC LIMIT ?", (limit,))
        return [TokenRow(**dict(r)) for r in rows]

    # -- gateways and keys -------------------------------------------------------------------

    def gateway(self, gateway_id: str) -> GatewayRow | None:
        rows = self._read("SELECT * FROM gateways WHERE id = ?", (gateway_id,))
        return GatewayRow(**dict(rows[0])) if rows else None

    def gateways(self) -> list[GatewayRow]:
        return [GatewayRow(**dict(r)) for r in self._read("SELECT * FROM gateways ORDER BY id")]

    def signing_keys(self, gateway_id: str | None = None) -> list[KeyRow]:
        if gateway_id is None:
            rows = self._read("SELECT * FROM signing_keys ORDER BY gateway_id, added_at")
        else:
            rows = self._read(
                "SELECT * FROM signing_keys WHERE gateway_id = ? ORDER BY added_at", (gateway_id,)
            )
        return [KeyRow(**dict(r)) for r in rows]

    def revoked_serials(self) -> list[tuple[int, float]]:
        """Every certificate of every revoked gateway, with the revocation time (for the CRL)."""
        rows = self._read(
            "SELECT c.serial, g.revoked_at FROM certificates c JOIN gateways g ON g.id = c.gateway_id"
            " WHERE g.status = 'revoked' ORDER BY c.issued_at"
        )
        return [(int(r[0]), float(r[1])) for r in rows]

    def enrol(
        self,
        *,
        token_digest: str,
        source: str,
        gateway_id: str,
        estate: str | None,
        name: str | None,
        encrypt: str,
        issued: Issued,
        now: float,
        grace_until: float,
        audit: AuditRow,
    ) -> bool:
        """Spend the token and record the gateway; False when the token was spent meanwhile
        (two requests with one token: the conditional UPDATE lets exactly one through)."""
        with self._write() as db:
            spent = db.execute(
                "UPDATE tokens SET used_at = ?, used_from = ? WHERE digest = ? AND used_at IS NULL",
                (now, source, token_digest),
            ).rowcount
            if spent != 1:
                return False
            # Enrolling an id again (a replaced box) keeps its history: its earlier keys stay
            # valid for the grace period so that batches sealed before the swap still verify.
            db.execute(
                "INSERT INTO gateways (id, estate, name, status, enrolled_at, encrypt)"
                " VALUES (?, ?, ?, 'enrolled', ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET estate = excluded.estate, name = excluded.name,"
                " enrolled_at = excluded.enrolled_at, encrypt = excluded.encrypt",
                (gateway_id, estate, name, now, encrypt),
            )
            _record_issue(db, gateway_id, issued, now=now, grace_until=grace_until)
            _insert_audit(db, audit)
        return True

    def renew(
        self, *, gateway_id: str, at: float, issued: Issued, now: float, grace_until: float, audit: AuditRow
    ) -> bool:
        """Record a renewal; False when the gateway was revoked meanwhile or ``at`` is not newer
        than the last renewal's (a replayed request)."""
        with self._write() as db:
            changed = db.execute(
                "UPDATE gateways SET renewed_at = ?, last_renew_at = ? WHERE id = ? AND status = 'enrolled'"
                " AND (last_renew_at IS NULL OR last_renew_at < ?)",
                (now, at, gateway_id, at),
            ).rowcount
            if changed != 1:
                return False
            _record_issue(db, gateway_id, issued, now=now, grace_until=grace_until)
            _insert_audit(db, audit)
        return True

    def revoke(self, gateway_id: str, *, at: float, by: str, reason: str, audit: AuditRow) -> bool:
        """Mark the gateway revoked; False when it is unknown or already revoked."""
        with self._write() as db:
            changed = db.execute(
                "UPDATE gateways SET status = 'revoked', revoked_at = ?, revoked_by = ?, revoked_reason = ?"
                " WHERE id = ? AND status = 'enrolled'",
                (at, by, reason, gateway_id),
            ).rowcount
            if changed != 1:
                return False
            _insert_audit(db, audit)
        return True

    # -- audit -------------------------------------------------------------------------------

    def audit(self, row: AuditRow) -> None:
        with self._write() as db:
            _insert_audit(db, row)

    def audit_rows(self, *, limit: int = 200, before: int | None = None) -> list[AuditRow]:
        rows = self._read(
            "SELECT * FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?",
            (before if before is not None else 2**62, limit),
        )
        return [AuditRow(**dict(r)) for r in rows]


def audit_row(
    at: float,
    event: str,
    *,
    gateway_id: str | None = None,
    actor: str | None = None,
    source: str | None = None,
    reason: str | None = None,
    detail: str | None = None,
) -> AuditRow:
    return AuditRow(0, at, event, gateway_id, actor, source, reason, detail)


def _insert_audit(db: sqlite3.Connection, row: AuditRow) -> None:
    db.execute(
        "INSERT INTO audit (at, event, gateway_id, actor, source, reason, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (row.at, row.event, row.gateway_id, row.actor, row.source, row.reason, row.detail),
    )


def _record_issue(
    db: sqlite3.Connection, gateway_id: str, issued: Issued, *, now: float, grace_until: float
) -> None:
    db.execute(
        "UPDATE gateways SET cert_serial = ?, cert_not_after = ?, e2e_key = ?,"
        " password_line = COALESCE(?, password_line) WHERE id = ?",
        (str(issued.serial), issued.not_after, issued.e2e_pem, issued.password_line, gateway_id),
    )
    db.execute(
        "INSERT INTO certificates (serial, gateway_id, issued_at, not_after) VALUES (?, ?, ?, ?)",
        (str(issued.serial), gateway_id, now, issued.not_after),
    )
    # The keys in use so far retire with a grace period (never extended for already retired ones).
    db.execute(
        "UPDATE signing_keys SET valid_until = ? WHERE gateway_id = ? AND valid_until IS NULL AND kid != ?",
        (grace_until, gateway_id, issued.kid),
    )
    db.execute(
        "INSERT INTO signing_keys (gateway_id, kid, pem, added_at, valid_until) VALUES (?, ?, ?, ?, NULL)"
        " ON CONFLICT (gateway_id, kid) DO UPDATE SET valid_until = NULL",
        (gateway_id, issued.kid, issued.signing_pem, now),
    )
