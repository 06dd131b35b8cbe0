"""The outbox's disk reserve: real blocks held, given back on a full disk, taken again."""

from __future__ import annotations

from pathlib import Path

from edge.outbox.reserve import DiskReserve, reserve_path


def test_take_release_take(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    reserve = DiskReserve(db, quota_bytes=64 * 1024 * 1024)
    assert reserve.size == 4 * 1024 * 1024 and not reserve.held
    assert reserve.take() and reserve.held
    assert reserve_path(db).stat().st_blocks * 512 >= reserve.size  # allocated, not sparse
    assert reserve.take()  # already held: nothing to do
    assert reserve.release() and not reserve.held
    assert not reserve.release()
    assert reserve.take()


def test_sizes_are_bounded(tmp_path: Path) -> None:
    assert DiskReserve(tmp_path / "a.db", quota_bytes=1024).size == 256 * 1024
    assert DiskReserve(tmp_path / "a.db", quota_bytes=10**12).size == 8 * 1024 * 1024
