"""A few megabytes of disk held back for the outbox's own rescue on a full disk.

When the filesystem fills (a log gone wild, an SD card shared with something else), SQLite
cannot even delete: a transaction that evicts old telemetry must first write to the WAL. So the
outbox keeps a reserve file of real, allocated blocks beside its database. On ``SQLITE_FULL`` it
gives the reserve back to the filesystem, evicts old telemetry (with its ``outbox.gap`` record and
system alarm) into the room that made, and checkpoints the WAL; once the disk has room again the
reserve is taken back, so the next full disk finds it there too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import structlog

__all__ = ["DiskReserve", "reserve_path"]

_LOG = structlog.get_logger(__name__)
_MAX_BYTES: Final = 8 * 1024 * 1024
_MIN_BYTES: Final = 256 * 1024


def reserve_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".reserve")


class DiskReserve:
    def __init__(self, db_path: Path, quota_bytes: int) -> None:
        self.path = reserve_path(db_path)
        self.size = max(_MIN_BYTES, min(_MAX_BYTES, quota_bytes // 16))

    @property
    def held(self) -> bool:
        try:
            return self.path.stat().st_size >= self.size
        except OSError:
            return False

    def take(self) -> bool:
        """Hold the reserve if the disk has room for it and as much again; True if held."""
        if self.held:
            return True
        try:
            stats = os.statvfs(self.path.parent)
            if stats.f_bavail * stats.f_frsize < 2 * self.size:
                return False
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)  # real blocks, not a sparse promise
            finally:
                os.close(fd)
        except OSError as exc:
            self.path.unlink(missing_ok=True)
            _LOG.warning("outbox disk reserve not taken", error=str(exc))
            return False
        return True

    def release(self) -> bool:
        """Give the reserve back to the filesystem; True if there was one."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        _LOG.warning("outbox disk reserve released: the disk is full", bytes=self.size)
        return True
