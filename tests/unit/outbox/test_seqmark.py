"""The sequence high-water side file."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import StorageError
from edge.outbox.seqmark import SeqMarks, read_marks, seq_path, write_marks


def test_marks_round_trip_and_leave_no_temp_file(tmp_path: Path) -> None:
    path = seq_path(tmp_path / "outbox.db")
    assert path.name == "outbox.db.seq"
    assert read_marks(path) is None
    write_marks(path, SeqMarks(session=3, reserved={"event": 1_000, "telemetry": 2_000}))
    write_marks(path, SeqMarks(session=4, reserved={"event": 1_000, "telemetry": 3_000}))
    assert read_marks(path) == SeqMarks(session=4, reserved={"event": 1_000, "telemetry": 3_000})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outbox.db.seq"]


@pytest.mark.parametrize("text", ["", "{", "[]", '{"format": 2}', '{"format": 1, "session": 1}'])
def test_an_unreadable_mark_is_an_error_not_a_guess(tmp_path: Path, text: str) -> None:
    path = tmp_path / "outbox.db.seq"
    path.write_text(text)
    with pytest.raises(StorageError):
        read_marks(path)
