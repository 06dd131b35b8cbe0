"""A small filesystem for the outbox, and a ballast file that fills it: the "disk full" fault.

A tmpfs mounted with ``size=`` behaves like a full SD card to SQLite (``ENOSPC`` on write,
``SQLITE_FULL``), without touching the machine's real disks. Mounting needs root; without it
:func:`small_filesystem` raises :class:`NeedsRoot` and the scenario says so instead of running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

__all__ = ["Ballast", "NeedsRoot", "small_filesystem"]


class NeedsRoot(RuntimeError):
    pass


@contextlib.contextmanager
def small_filesystem(mountpoint: Path, size_bytes: int) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        raise NeedsRoot("mounting a size-limited filesystem needs root and mount(8)")
    mountpoint.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0755", "chaos-outbox", str(mountpoint)],
        check=True,
        capture_output=True,
    )
    try:
        yield mountpoint
    finally:
        # Lazy: a process killed a moment ago may still hold a file open while it is reaped.
        subprocess.run(["umount", "-l", str(mountpoint)], check=False, capture_output=True)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class Ballast:
    """A file that takes all but ``leave_bytes`` of a filesystem, and gives it back."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "ballast"

    def fill(self, *, leave_bytes: int) -> int:
        chunk = b"\0" * 65536
        written = 0
        with self.path.open("ab") as fh:
            while free_bytes(self.path.parent) > leave_bytes + len(chunk):
                try:
                    fh.write(chunk)
                    fh.flush()
                except OSError:
                    break
                written += len(chunk)
        return written

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
