"""The sequence high-water mark kept next to the outbox database, in ``<db>.seq``.

A batch sequence number must never be reused, not even after the database file is restored
from an older copy (the copy's ``lane_seq`` is behind what central has already seen). So the
outbox *reserves* numbers in blocks in this side file, written atomically (temp file, fsync,
rename, fsync of the folder) before a seal that needs a new block commits: one fsync per block,
not per batch.

The file also counts *sessions* (opens of the database for writing). The database records the
session that last closed it cleanly. On open:

- the database was closed cleanly by the latest session → its ``lane_seq`` is exact: continue
  from it, so an ordinary restart leaves no hole in the numbering;
- otherwise (a crash, or a database restored from an older copy) → continue above the reserved
  mark, which is at least every number ever handed out. That leaves a hole of at most one block,
  never a reuse.

If this file is lost as well, the uplink can still jump ahead with ``Outbox.advance_seq`` when
central reports a higher sequence number than the outbox holds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import StorageError

__all__ = ["SeqMarks", "read_marks", "seq_path", "write_marks"]

_FORMAT = 1


@dataclass(slots=True)
class SeqMarks:
    session: int = 0
    reserved: dict[str, int] = field(default_factory=dict)


def seq_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".seq")


def read_marks(path: Path) -> SeqMarks | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"{path}: cannot read the sequence mark: {exc}") from exc
    try:
        raw = json.loads(text)
        found_format = raw.get("format")
    except (ValueError, AttributeError) as exc:
        raise StorageError(f"{path}: unreadable sequence mark ({exc}); refusing to guess") from exc
    if found_format != _FORMAT:
        raise StorageError(f"{path}: sequence mark of unknown format {found_format!r}; refusing to guess")
    try:
        return SeqMarks(
            session=int(raw["session"]),
            reserved={str(k): int(v) for k, v in raw["reserved"].items()},
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # Guessing here could reuse a sequence number; a human must look (or delete the file
        # and let central's reported high-water mark advance the sequence).
        raise StorageError(f"{path}: unreadable sequence mark ({exc}); refusing to guess") from exc


def write_marks(path: Path, marks: SeqMarks) -> None:
    body = json.dumps(
        {"format": _FORMAT, "session": marks.session, "reserved": marks.reserved}, sort_keys=True
    ).encode()
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise StorageError(f"{path}: cannot write the sequence mark: {exc}") from exc
