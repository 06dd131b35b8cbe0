"""CPU and memory of a process and its descendants, read from Linux ``/proc``, for the benches
that measure the gateway, central and their helpers from outside."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import psutil

__all__ = ["cpu_s", "thread_cpu_s", "tree_cpu_s", "tree_pss", "tree_rss"]


def _stat_fields(path: Path) -> list[str]:
    # The command name in parentheses may hold spaces: split after its closing one.
    return path.read_text().rsplit(")", 1)[1].split()


def cpu_s(pid: int, *, reaped_children: bool = False) -> float:
    """User + system CPU seconds of one process so far, 0 once it is gone; with
    ``reaped_children``, also those of its children that have exited and been waited for."""
    try:
        fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def thread_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds per thread of one process (Python names no OS threads: by thread id)."""
    out: dict[int, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                fields = _stat_fields(task / "stat")
                out[int(task.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_cpu_s(pid: int) -> float:
    """The process and every descendant (worker processes count as the gateway's; PostgreSQL's
    backends and autovacuum workers as the server's). A descendant that exits during the window
    moves into its parent's count of reaped children, so nothing drops out of the sum."""
    return sum(cpu_s(p.pid, reaped_children=True) for p in _tree(pid))


def tree_rss(pid: int) -> int:
    total = 0
    for proc in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


def tree_pss(pid: int) -> int:
    """Proportional set size over the tree: shared pages (the interpreter, OpenSSL, the Rust
    libraries of pydantic and cryptography) divided among the processes that map them. RSS
    counts them whole in every process, so for a gateway with poll workers PSS is its real
    footprint; for one process the difference is what other processes share with it."""
    total = 0
    for proc in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += proc.memory_full_info().pss
    return total
