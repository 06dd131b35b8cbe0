"""Write the broker files central owns and ask Mosquitto to reload them. The I/O edge of
:mod:`.broker_files`.

Each file is replaced atomically (a sibling temporary file, fsync, rename), keeping the mode and
group of the file it replaces, so Mosquitto, which usually runs as another user, can still read
it and never sees half a file. The reload is SIGHUP to the process in ``pid_file`` or
``reload_command`` (e.g. ``["systemctl", "reload", "mosquitto"]``); failing to reload is
reported, not raised: the trust store is already right, and the next change or start retries.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

from cloud_sync.central.config import BrokerAccess

__all__ = ["AccessFiles", "ReloadResult", "reload_broker", "write_access_files"]

_LOG = structlog.get_logger(__name__)

_RELOAD_TIMEOUT_S: Final = 30.0
_NEW_FILE_MODE: Final = 0o640


@dataclass(frozen=True, slots=True)
class AccessFiles:
    acl: str
    passwords: str | None  # None: no password_file configured
    crl: bytes | None  # None: no crl_file configured (or no CA to sign one)


@dataclass(frozen=True, slots=True)
class ReloadResult:
    reloaded: bool
    detail: str


def _replace(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        before = path.stat()
        mode, gid = before.st_mode & 0o777, before.st_gid
    except FileNotFoundError:
        mode, gid = _NEW_FILE_MODE, -1
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if gid != -1:
            # Only possible when central is in that group; otherwise the mode must do.
            with contextlib.suppress(OSError):
                os.chown(tmp, -1, gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_access_files(access: BrokerAccess, files: AccessFiles) -> None:
    _replace(access.acl_file, files.acl.encode("utf-8"))
    if access.password_file is not None and files.passwords is not None:
        _replace(access.password_file, files.passwords.encode("utf-8"))
    if access.crl_file is not None and files.crl is not None:
        _replace(access.crl_file, files.crl)


def reload_broker(access: BrokerAccess) -> ReloadResult:
    if access.pid_file is not None:
        try:
            pid = int(access.pid_file.read_text(encoding="ascii").strip())
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError) as exc:
            _LOG.error("broker not reloaded", pid_file=str(access.pid_file), error=str(exc))
            return ReloadResult(False, f"SIGHUP via {access.pid_file}: {exc}")
        return ReloadResult(True, f"SIGHUP to {pid}")
    if access.reload_command:
        try:
            done = subprocess.run(
                access.reload_command,
                capture_output=True,
                timeout=_RELOAD_TIMEOUT_S,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            _LOG.error("broker not reloaded", command=access.reload_command, error=str(exc))
            return ReloadResult(False, f"{access.reload_command[0]}: {exc}")
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip()[:500]
            _LOG.error(
                "broker reload command failed",
                command=access.reload_command,
                code=done.returncode,
                stderr=err,
            )
            return ReloadResult(False, f"{access.reload_command[0]} exited {done.returncode}: {err}")
        return ReloadResult(True, " ".join(access.reload_command))
    return ReloadResult(False, "neither pid_file nor reload_command is configured")
