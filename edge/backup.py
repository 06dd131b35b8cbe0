"""Online backup and restore of a gateway: every database, the sequence marks, keys and site file.

:func:`create_backup` copies each SQLite database with SQLite's backup API (consistent while the
daemon writes), adds the outbox's sequence mark file, the key and certificate files the site
names, the enrolled identity folder (``uplink.identity``: without it a gateway restored onto a new
disk would need a new enrolment token), and the site file itself, writes a manifest (SHA-256 and
file mode of each member, schema versions, sequence positions), packs them in a tar and encrypts
it (``edge.backup_crypto``). Rotation keeps the newest ``keep`` archives of the folder.

Restored files get their recorded mode back, so a private key stays 0600 and a folder made for a
private file is 0700.

:func:`restore_backup` decrypts, checks every hash and ``PRAGMA integrity_check``, refuses a
schema newer than this release, and writes the files into a data folder. The outbox is restored
**like after a crash**: the gateway may have sealed and sent batches after the backup was taken,
so the restored sequence mark is moved past every number that may have been used since
(:func:`skip_margin`), and the outbox, on opening, declares the skipped range to central in a
signed ``outbox.gap`` (``reason: seq_skipped``, docs/protocol.md §8). Central then sees no
reused number (no duplicate, no conflict) and no hole it waits for.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from core.errors import GatehouseError
from edge.backup_crypto import decrypt_stream, encrypt_stream
from edge.outbox import migrations
from edge.outbox.seqmark import SeqMarks, read_marks, seq_path, write_marks

__all__ = [
    "BackupError",
    "BackupItem",
    "create_backup",
    "plan_backup",
    "restore_backup",
    "rotate",
    "skip_margin",
]

_LOG = structlog.get_logger(__name__)

FORMAT = 1
SUFFIX = ".ghbk"
# What a lane may consume at most, in batches per second, when nothing better is known: the
# uplink seals a live batch per lane about every second and a catch-up a few more; 20 is ample.
ASSUMED_BATCHES_PER_S = 20.0
# central ignores a skip record spanning more numbers than this (docs/protocol.md §8).
MAX_SKIP_SPAN = 999_000

Progress = Callable[[str, int, int], None]  # (what, done, total)


class BackupError(GatehouseError):
    """A backup cannot be made or restored; the message says why."""


@dataclass(frozen=True, slots=True)
class BackupItem:
    name: str  # the member's path in the archive: data/outbox.db, keys/signing.key, site/site.yaml
    path: Path
    kind: str  # "sqlite" | "file"


def plan_backup(site: Any) -> list[BackupItem]:
    """Everything a gateway needs to come back: databases, sequence marks, keys, the site file."""
    data = Path(site.data_dir)
    items = [BackupItem("data/outbox.db", Path(site.outbox_path), "sqlite")]
    for name in ("rules.db",):
        items.append(BackupItem(f"data/{name}", data / name, "sqlite"))
    dashboard = site.config.dashboard or {}
    if dashboard:
        items.append(
            BackupItem(
                f"data/{dashboard.get('db', 'dashboard.db')}",
                data / dashboard.get("db", "dashboard.db"),
                "sqlite",
            )
        )
    items.append(BackupItem("data/outbox.db.seq", seq_path(Path(site.outbox_path)), "file"))
    base = Path(site.path).parent
    from edge.uplink.wiring import FILE_KEYS

    keys: list[tuple[str, Any]] = [(k, (site.config.uplink or {}).get(k)) for k in FILE_KEYS]
    keys += [(k, dashboard.get(k)) for k in ("tls_cert", "tls_key", "metrics_token_file")]
    for _, value in keys:
        if isinstance(value, str) and value:
            path = base / value
            items.append(BackupItem(_member_name(value, path), path, "file"))
    identity = (site.config.uplink or {}).get("identity")
    if isinstance(identity, str) and identity:
        items += _identity_items(base, identity)
    items.append(BackupItem(f"site/{Path(site.path).name}", Path(site.path), "file"))
    return [i for i in items if i.path.exists()]


def _member_name(value: str, path: Path) -> str:
    return f"site/{value}" if not Path(value).is_absolute() else f"keys{path}"


def _identity_items(base: Path, value: str) -> list[BackupItem]:
    """Every file of the identity folder: identity.json and each version folder it may name
    (the previous version is kept until the running uplink has switched)."""
    folder = base / value
    if not folder.is_dir():
        return []
    found = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return [BackupItem(_member_name(str(Path(value) / p.relative_to(folder)), p), p, "file") for p in found]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_sqlite(src: Path, dst: Path, progress: Progress | None, name: str) -> None:
    try:
        source = sqlite3.connect(f"{src.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        target = sqlite3.connect(dst)
        try:
            source.execute("PRAGMA busy_timeout = 30000")

            def step(status: int, remaining: int, total: int) -> None:
                if progress is not None:
                    progress(name, total - remaining, total)

            # 256 pages (1 MB) per step: the daemon's writers get the lock between steps.
            source.backup(target, pages=256, progress=step)
            target.execute("PRAGMA journal_mode = DELETE")
        finally:
            target.close()
            source.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{src}: cannot back up: {exc}") from exc


def _db_facts(path: Path) -> dict[str, Any]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        facts: dict[str, Any] = {"user_version": int(conn.execute("PRAGMA user_version").fetchone()[0])}
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "lane_seq" in tables:
            facts["outbox_schema"] = migrations.schema_version(conn)
            facts["lane_seq"] = dict(conn.execute("SELECT lane, last_seq FROM lane_seq").fetchall())
        return facts


def create_backup(
    site: Any,
    folder: Path,
    passphrase: bytes,
    *,
    progress: Progress | None = None,
    now: float | None = None,
    version: str = "",
) -> Path:
    """Write one encrypted archive into ``folder``; returns its path."""
    now = time.time() if now is None else now
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    final = folder / f"gatehouse-{site.config.gateway.id}-{stamp}{SUFFIX}"
    with tempfile.TemporaryDirectory(prefix=".gatehouse-backup-", dir=folder) as tmp:
        staging = Path(tmp)
        members: list[dict[str, Any]] = []
        for item in plan_backup(site):
            dst = staging / item.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if item.kind == "sqlite":
                _copy_sqlite(item.path, dst, progress, item.name)
                facts = _db_facts(dst)
            else:
                shutil.copyfile(item.path, dst)
                facts = {"mode": item.path.stat().st_mode & 0o777}
                if progress is not None:
                    progress(item.name, 1, 1)
            members.append(
                {
                    "name": item.name,
                    "kind": item.kind,
                    "sha256": _sha256(dst),
                    "size": dst.stat().st_size,
                    **facts,
                }
            )
        manifest = {
            "format": FORMAT,
            "created_at": now,
            "gatehouse_version": version,
            "site_id": site.id,
            "gateway_id": site.config.gateway.id,
            "members": members,
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        tar_path = staging.parent / (staging.name + ".tar")
        try:
            with tarfile.open(tar_path, "w") as tar:
                tar.add(staging / "manifest.json", arcname="manifest.json")
                for member in members:
                    tar.add(staging / member["name"], arcname=member["name"])
            partial = final.with_suffix(SUFFIX + ".part")
            with tar_path.open("rb") as src, partial.open("wb") as out:
                encrypt_stream(src, out, passphrase)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, final)
        finally:
            tar_path.unlink(missing_ok=True)
    _LOG.info("backup written", path=str(final), members=len(members))
    return final


def rotate(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` archives of ``folder``; returns the deleted ones."""
    archives = sorted(folder.glob(f"gatehouse-*{SUFFIX}"), key=lambda p: p.name)
    doomed = archives[:-keep] if keep > 0 else []
    for path in doomed:
        path.unlink()
    return doomed


def skip_margin(manifest: dict[str, Any], now: float, *, batches_per_s: float = ASSUMED_BATCHES_PER_S) -> int:
    """How many numbers past the backup's reserved mark the restored outbox must skip.

    Twice what a lane could have consumed since the backup, at least one reservation block
    (1 000), and within what one skip record may span.
    """
    elapsed_s = max(0.0, now - float(manifest["created_at"]))
    return max(1000, min(MAX_SKIP_SPAN - 1000, math.ceil(2 * batches_per_s * elapsed_s)))


def _extract(archive: Path, passphrase: bytes, into: Path) -> dict[str, Any]:
    plain = into.parent / (into.name + ".tar")
    try:
        with archive.open("rb") as src, plain.open("wb") as out:
            for chunk in decrypt_stream(src, passphrase):
                out.write(chunk)
        with tarfile.open(plain, "r") as tar:
            tar.extractall(into, filter="data")
    finally:
        plain.unlink(missing_ok=True)
    try:
        manifest: dict[str, Any] = json.loads((into / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{archive}: no readable manifest: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{archive}: backup format {manifest.get('format')!r} is not known to this release")
    return manifest


def verify(archive: Path, passphrase: bytes, into: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Decrypt into ``into`` and check hashes, integrity and versions; returns the manifest."""
    manifest = _extract(archive, passphrase, into)
    members = manifest["members"]
    for n, member in enumerate(members, 1):
        path = into / member["name"]
        if not path.is_file() or _sha256(path) != member["sha256"]:
            raise BackupError(f"{archive}: {member['name']} does not match its hash in the manifest")
        if member["kind"] == "sqlite":
            with contextlib.closing(sqlite3.connect(path)) as conn:
                result = conn.execute("PRAGMA integrity_check").fetchall()
            if result != [("ok",)]:
                raise BackupError(f"{archive}: {member['name']} fails integrity_check: {result[:3]}")
            schema = member.get("outbox_schema")
            if schema is not None and schema > migrations.CURRENT_VERSION:
                raise BackupError(
                    f"{archive}: outbox schema v{schema} is newer than this release"
                    f" (v{migrations.CURRENT_VERSION})"
                )
        if progress is not None:
            progress("verify", n, len(members))
    return manifest


def restore_backup(
    archive: Path,
    passphrase: bytes,
    data_dir: Path,
    *,
    site_dir: Path | None = None,
    force: bool = False,
    now: float | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Restore into ``data_dir`` (and the site file and keys into ``site_dir`` if given).

    Returns ``{"manifest", "restored": [paths], "seq": {lane: continues_after}}``. Refuses a data
    folder that already holds databases unless ``force`` (the daemon must be stopped).
    """
    now = time.time() if now is None else now
    data_dir.mkdir(parents=True, exist_ok=True)
    existing = [p.name for p in data_dir.glob("*.db")]
    if existing and not force:
        raise BackupError(
            f"{data_dir} already holds {', '.join(sorted(existing))}: stop the gateway and use --force"
        )
    with tempfile.TemporaryDirectory(prefix=".gatehouse-restore-", dir=data_dir) as tmp:
        staging = Path(tmp) / "x"
        manifest = verify(archive, passphrase, staging, progress)
        restored: list[str] = []
        targets = [(m, _target(m["name"], data_dir, site_dir)) for m in manifest["members"]]
        # A folder that will hold a private file (a key, the password) is made 0700.
        private_dirs = {
            folder
            for m, dst in targets
            if dst is not None and m.get("mode") is not None and not m["mode"] & 0o077
            for folder in dst.parents
        }
        outbox_member = next((m for m in manifest["members"] if m["name"] == "data/outbox.db"), None)
        old_marks = read_marks(seq_path(data_dir / "outbox.db"))  # a surviving mark wins where higher
        for member, dst in targets:
            if dst is None or member["name"] == "data/outbox.db.seq":
                continue
            src = staging / member["name"]
            if member["name"].startswith("data/"):
                for suffix in ("-wal", "-shm"):
                    dst.with_name(dst.name + suffix).unlink(missing_ok=True)
            _copy_with_mode(src, dst, member.get("mode"), private_dirs)
            restored.append(str(dst))
        seq: dict[str, int] = {}
        if outbox_member is not None:
            seq = _restore_marks(staging, data_dir, manifest, outbox_member, old_marks, now)
    _LOG.info("backup restored", archive=str(archive), data_dir=str(data_dir), seq=seq)
    return {"manifest": manifest, "restored": restored, "seq": seq}


def _target(name: str, data_dir: Path, site_dir: Path | None) -> Path | None:
    if name.startswith("data/"):
        return data_dir / name.removeprefix("data/")
    if site_dir is not None:  # site/ files beside the site file; keys/ at their old absolute path under it
        return site_dir / name.removeprefix("site/")
    return None


def _copy_with_mode(src: Path, dst: Path, mode: int | None, private_dirs: set[Path]) -> None:
    for folder in reversed(dst.parents):
        if not folder.exists():
            folder.mkdir(mode=0o700 if folder in private_dirs else 0o777)
    # Written under its final mode from the first byte: a key is never readable by others.
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if mode is None else mode)
    with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
        shutil.copyfileobj(inp, out)
    if mode is not None:
        os.chmod(dst, mode)


def _restore_marks(
    staging: Path,
    data_dir: Path,
    manifest: dict[str, Any],
    outbox: dict[str, Any],
    old: SeqMarks | None,
    now: float,
) -> dict[str, int]:
    backed = (
        read_marks(staging / "data" / "outbox.db.seq") if (staging / "data/outbox.db.seq").exists() else None
    )
    lane_seq: dict[str, int] = {k: int(v) for k, v in outbox.get("lane_seq", {}).items()}
    margin = skip_margin(manifest, now)
    reserved: dict[str, int] = {}
    for lane, last in lane_seq.items():
        mark = max(last, (backed.reserved.get(lane, 0) if backed else 0))
        target = min(mark + margin, last + MAX_SKIP_SPAN)
        if old is not None:
            target = max(target, old.reserved.get(lane, 0))
        reserved[lane] = target
    session = max(backed.session if backed else 0, old.session if old else 0) + 1
    # The restored database was copied while open, so it records no clean close; make sure, so
    # that opening it takes the crash path and continues above ``reserved``.
    with contextlib.closing(sqlite3.connect(data_dir / "outbox.db")) as conn:
        conn.execute("DELETE FROM meta WHERE key = 'clean_session'")
        conn.commit()
    write_marks(seq_path(data_dir / "outbox.db"), SeqMarks(session=session, reserved=reserved))
    return reserved


def describe(manifest: dict[str, Any]) -> str:
    """A short human summary of a manifest, for the CLI."""
    out = io.StringIO()
    created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(manifest["created_at"]))
    out.write(f"gateway {manifest['gateway_id']} of site {manifest['site_id']}, taken {created}\n")
    for m in manifest["members"]:
        extra = f" lane_seq={m['lane_seq']}" if "lane_seq" in m else ""
        out.write(f"  {m['name']:<32} {m['size']:>12,} bytes{extra}\n")
    return out.getvalue()
