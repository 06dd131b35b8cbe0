"""Memory per Modbus TCP link: N connected ``ModbusTcpLink`` to one server, each having read once.

Issue 19 found about 100 KB per device at 500 devices, much of it the Modbus client held per
connection. This measures what one connected link costs, for the current implementation and
for a baseline taken from git (by default the last one built on pymodbus' client), each in a
fresh interpreter so neither inherits the other's heap:

- ``rss_kb_per_link``: the process' resident set growth per link (what the issue's target is
  about; includes the socket's and the event loop's share, and the allocator's slack);
- ``traced_kb_per_link``: Python allocations per link under tracemalloc (a separate run, since
  tracemalloc inflates the RSS): the objects themselves.

The server (pymodbus', as in ``bench.modbus_client``) runs in its own process and is not
counted.

Run: ``.venv/bin/python -m bench.modbus_link_memory [--links N] [--baseline GIT_REV]``; writes
``bench/results/modbus_link_memory.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

from bench.modbus_client import start_server

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "modbus_link_memory.json"
LINKS = 500
BASELINE = "985f750"  # the last ModbusTcpLink on pymodbus' AsyncModbusTcpClient
TARGET_MB_TOTAL = 80  # issue 19: the whole gateway at 500 devices


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def _load_link_class(source: Path | None) -> Any:
    if source is None:
        from drivers.modbus.tcp import ModbusTcpLink

        return ModbusTcpLink
    spec = importlib.util.spec_from_file_location("baseline_modbus_tcp", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.ModbusTcpLink


async def _measure(link_class: Any, port: int, links: int, traced: bool) -> dict[str, float]:
    from drivers.modbus import Table

    # One link through its whole life first, so imports, caches and the loop's own structures
    # are in place before the baseline is taken.
    async with link_class("127.0.0.1", port, timeout_ms=5000) as warm:
        await warm.read(1, Table.HOLDING, 0, 30)
    gc.collect()
    if traced:
        tracemalloc.start()
    before_rss = _rss_kb()
    before_traced = tracemalloc.get_traced_memory()[0] if traced else 0
    opened = [link_class("127.0.0.1", port, timeout_ms=5000) for _ in range(links)]
    for link in opened:
        await link.__aenter__()
        # One at a time: a burst of connects would overflow the server's accept backlog.
        await link.read(1, Table.HOLDING, 0, 30)
    gc.collect()
    rss = _rss_kb() - before_rss
    traced_bytes = tracemalloc.get_traced_memory()[0] - before_traced if traced else 0
    assert all(link.connected for link in opened)
    for link in opened:
        await link.aclose()
    if traced:
        tracemalloc.stop()
    return {"rss_kb_per_link": rss / links, "traced_kb_per_link": traced_bytes / 1024 / links}


def _child(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--links", type=int, required=True)
    parser.add_argument("--source", type=Path)
    parser.add_argument("--traced", action="store_true")
    args = parser.parse_args(argv)
    import logging

    import structlog

    logging.disable(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    link_class = _load_link_class(args.source)
    print(json.dumps(asyncio.run(_measure(link_class, args.port, args.links, args.traced))))
    return 0


def _run_child(port: int, links: int, source: Path | None, traced: bool) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.modbus_link_memory", "--child"]
    command += ["--port", str(port), "--links", str(links)]
    if source is not None:
        command += ["--source", str(source)]
    if traced:
        command.append("--traced")
    out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def _measure_one(port: int, links: int, source: Path | None) -> dict[str, float]:
    figures = _run_child(port, links, source, traced=False)
    figures["traced_kb_per_link"] = _run_child(port, links, source, traced=True)["traced_kb_per_link"]
    return {key: round(value, 2) for key, value in figures.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["--child"]:
        sys.exit(_child(args_list[1:]))
    parser = argparse.ArgumentParser(prog="python -m bench.modbus_link_memory")
    parser.add_argument("--links", type=int, default=LINKS)
    parser.add_argument(
        "--baseline", default=BASELINE, help="git revision of drivers/modbus/tcp.py to compare"
    )
    args = parser.parse_args(args_list)

    proc, port = start_server()
    try:
        current = _measure_one(port, args.links, None)
        rss, traced = current["rss_kb_per_link"], current["traced_kb_per_link"]
        print(f"current:  {rss:.1f} KB RSS, {traced:.1f} KB traced per link")
        baseline: dict[str, Any]
        with tempfile.TemporaryDirectory() as tmp:
            try:
                source = subprocess.run(
                    ["git", "show", f"{args.baseline}:drivers/modbus/tcp.py"],
                    cwd=ROOT,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            except (OSError, subprocess.CalledProcessError) as exc:
                baseline = {"error": f"cannot read the baseline from git: {exc}"}
            else:
                path = Path(tmp) / "baseline_modbus_tcp.py"
                path.write_text(source)
                try:
                    baseline = _measure_one(port, args.links, path)
                except subprocess.CalledProcessError as exc:  # the old code no longer fits the tree
                    baseline = {"error": f"baseline run failed: {exc.stderr[-500:]}"}
        if "error" in baseline:
            print(f"baseline: {baseline['error']}")
        else:
            rss, traced = baseline["rss_kb_per_link"], baseline["traced_kb_per_link"]
            print(f"baseline: {rss:.1f} KB RSS, {traced:.1f} KB traced per link ({args.baseline})")
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    summary: dict[str, Any] = {
        "links": args.links,
        "rss_kb_per_link": current["rss_kb_per_link"],
        "traced_kb_per_link": current["traced_kb_per_link"],
        "baseline_rss_kb_per_link": baseline.get("rss_kb_per_link"),
        "baseline_traced_kb_per_link": baseline.get("traced_kb_per_link"),
    }
    print(json.dumps(summary))
    report = {
        "benchmark": "modbus_link_memory",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "target_mb_total_at_500_devices": TARGET_MB_TOTAL,
        "baseline_revision": args.baseline,
        "summary": summary,
        "results": {"current": current, "baseline": baseline},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
