"""Run ``gatehouse`` (any subcommand, normally ``run``) with tracemalloc on, and after ``--after-s``
write where its memory is: Python allocations by file and by line, live objects by type, thread
count, the RSS and the modules loaded. Used by ``bench.e2e_scale --memory``.

Usage: ``python -m bench.memory_probe --after-s 40 --out mem.json -- run --config site.yaml``.

tracemalloc costs CPU and memory of its own (frames are kept for every live block), so the RSS
written here is higher than an unprobed run's; the breakdown is what matters.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

TOP = 40
_HEAVY = ("asyncua", "bacpypes3", "pydantic", "fastapi", "uvicorn", "serial", "numpy", "cryptography")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _group(stats: list[tracemalloc.Statistic], root: str) -> list[dict[str, Any]]:
    out = []
    for stat in stats[:TOP]:
        frame = stat.traceback[0]
        name = frame.filename
        for prefix in (root + "/", sys.prefix + "/lib/"):
            if name.startswith(prefix):
                name = name[len(prefix) :]
        out.append({"where": f"{name}:{frame.lineno}", "kb": round(stat.size / 1024), "blocks": stat.count})
    return out


def _by_package(stats: list[tracemalloc.Statistic], root: str) -> dict[str, float]:
    """MB per top-level package (the project's own folders, or site-packages' distributions)."""
    sums: collections.Counter[str] = collections.Counter()
    for stat in stats:
        name = stat.traceback[0].filename
        if "site-packages/" in name:
            key = name.split("site-packages/", 1)[1].split("/", 1)[0]
        elif name.startswith(root + "/"):
            key = name[len(root) + 1 :].split("/", 1)[0]
        elif "/lib/python" in name:
            key = "stdlib:" + name.split("/lib/python", 1)[1].split("/", 2)[1]
        else:
            key = name
        sums[key] += stat.size
    return {k: round(v / 2**20, 2) for k, v in sums.most_common(TOP)}


def _sample_holders() -> list[dict[str, Any]]:
    """Which containers keep ``Sample`` objects alive: the samples are the largest population
    of objects, so a second copy of them (a queue that backs up, a cache) shows here."""
    from core.model import Sample

    everything = gc.get_objects()
    ids = {id(o) for o in everything if type(o) is Sample}
    found: list[dict[str, Any]] = []
    for obj in everything:
        kind = type(obj)
        if kind is dict:
            held = sum(1 for v in obj.values() if id(v) in ids)
        elif kind in (list, tuple, collections.deque):
            held = sum(1 for v in obj if id(v) in ids)
        else:
            continue
        if held >= 100:
            found.append({"container": kind.__name__, "len": len(obj), "samples": held})
    found.sort(key=lambda x: -x["samples"])
    return [{"samples_alive": len(ids)}, *found[:TOP]]


def snapshot(out: Path) -> None:
    root = str(Path(__file__).resolve().parent.parent)
    snap = tracemalloc.take_snapshot()
    traced, peak = tracemalloc.get_traced_memory()
    by_file = snap.statistics("filename")
    by_line = snap.statistics("lineno")
    types = collections.Counter(type(o).__name__ for o in gc.get_objects())
    result = {
        "rss_mb": round(_rss_mb(), 1),
        "traced_mb": round(traced / 2**20, 1),
        "traced_peak_mb": round(peak / 2**20, 1),
        "threads": threading.active_count(),
        "thread_names": sorted(t.name for t in threading.enumerate()),
        "modules_loaded": len(sys.modules),
        "heavy_modules_loaded": sorted(
            m
            for m in ("asyncua", "bacpypes3", "pydantic", "fastapi", "uvicorn", "serial", "numpy")
            if m in sys.modules
        ),
        "by_package_mb": _by_package(by_file, root),
        "by_file": _group(by_file, root),
        "by_line": _group(by_line, root),
        "objects_by_type": dict(types.most_common(TOP)),
        "sample_holders": _sample_holders(),
    }
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.memory_probe")
    parser.add_argument("--after-s", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = [a for a in args.rest if a != "--"]
    tracemalloc.start(1)

    def later() -> None:
        time.sleep(args.after_s)
        try:
            snapshot(args.out)
        except Exception as exc:  # noqa: BLE001 - a probe must never stop the gateway
            args.out.write_text(json.dumps({"error": repr(exc)}))

    threading.Thread(target=later, name="memory-probe", daemon=True).start()
    from edge.cli import main as cli_main

    sys.exit(cli_main(argv))


if __name__ == "__main__":
    main()
