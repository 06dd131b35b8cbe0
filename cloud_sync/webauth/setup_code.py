"""The one-time setup code that guards the first administrator account (issue 17, item 3).

Used by the LAN dashboard (``dashboard-setup-code``) and central's console (its own file name).

Until an account exists, the dashboard's setup page would hand the administrator role to the
first LAN client that finds it. Instead, a dashboard started without accounts makes a random
code, writes it to ``DATA_DIR/dashboard-setup-code`` (mode 0600: the gateway's user and root),
logs it (the journal) and ``gatehouse run`` prints it on the console. ``POST /api/setup`` needs
it; the file is removed once the administrator exists. Each start makes a new code.

The code is 12 characters from an alphabet without look-alikes (no 0/O, 1/I/L), shown in three
groups of four; case, spaces and dashes do not matter when it is typed back (60 bits).
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["SETUP_CODE_FILE", "matches", "new_setup_code", "read_setup_code", "remove_setup_code"]

SETUP_CODE_FILE = "dashboard-setup-code"
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def _normal(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def new_setup_code(data_dir: Path, *, file_name: str = SETUP_CODE_FILE) -> str:
    """A fresh code, written (0600) to the data folder before it is returned.

    ``file_name``: central's console keeps its own code file (``cloud_sync.central.console``)."""
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(12))
    code = "-".join(raw[i : i + 4] for i in range(0, 12, 4))
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / file_name
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    # created 0600 from the start (never readable by others, even for a moment)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(code + "\n")
    os.replace(tmp, path)
    return code


def read_setup_code(data_dir: Path, *, file_name: str = SETUP_CODE_FILE) -> str | None:
    try:
        return (data_dir / file_name).read_text(encoding="ascii").strip() or None
    except FileNotFoundError:
        return None


def remove_setup_code(data_dir: Path, *, file_name: str = SETUP_CODE_FILE) -> None:
    with contextlib.suppress(FileNotFoundError):
        (data_dir / file_name).unlink()


def matches(given: str, expected: str | None) -> bool:
    """Whether ``given`` is the code (constant time; never true without a code)."""
    if not expected:
        return False
    return hmac.compare_digest(_normal(given).encode(), _normal(expected).encode())
