"""``python -m chaos.soak`` (``make soak``, not in CI): hours at hundreds of devices, watching the
gateway's memory and file descriptors, then the ledger.

Passes when the gateway's RSS at the end is within ``--rss-growth`` (5 %) of its RSS after the
warm-up (the first tenth of the run), its open file descriptors did not grow, and central holds
every committed sample once. Samples of RSS/FDs every ``--every-s`` go to bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chaos.rig import RigOptions, chaos_rig

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results" / "soak.json"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def soak(root: Path, *, devices: int, seconds: float, every_s: float, growth: float) -> dict[str, Any]:
    samples: list[dict[str, float]] = []
    async with chaos_rig(root, RigOptions(devices=devices, poll_interval_s=1.0)) as rig:
        await rig.wait_draining(message="batches flowing", timeout_s=300)
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            pid = rig.gateway.pid
            assert pid is not None
            samples.append(
                {"t_s": round(time.monotonic() - t0, 1), "rss_kib": _rss_kib(pid), "fds": _fds(pid)}
            )
            await rig.hold(min(every_s, max(0.0, seconds - (time.monotonic() - t0))))
        tally = await rig.settle(timeout_s=600)
    tenth = max(1, len(samples) // 10)
    warm, last = samples[tenth - 1], samples[-1]
    rss_growth = (last["rss_kib"] - warm["rss_kib"]) / warm["rss_kib"]
    # Sockets come and go (a reconnect, a device's link): compare the highest count in the
    # first tenth with the highest in the last tenth, so a transient one is in both or neither.
    fd_growth = max(x["fds"] for x in samples[-tenth:]) - max(x["fds"] for x in samples[:tenth])
    return {
        "devices": devices,
        "seconds": seconds,
        "rss_growth": round(rss_growth, 4),
        "fd_growth": fd_growth,
        "ok": rss_growth < growth and fd_growth <= 0 and tally.clean,
        "ledger": tally.as_dict(),
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chaos.soak")
    p.add_argument("--devices", type=int, default=500)
    p.add_argument("--hours", type=float, default=2.0)
    p.add_argument("--every-s", type=float, default=30.0)
    p.add_argument("--rss-growth", type=float, default=0.05)
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    from edge.logs import configure_logging

    configure_logging("warning", json=False)
    with tempfile.TemporaryDirectory(prefix="gatehouse-soak-") as tmp:
        doc = asyncio.run(
            soak(
                Path(tmp),
                devices=args.devices,
                seconds=args.hours * 3600,
                every_s=args.every_s,
                growth=args.rss_growth,
            )
        )
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    summary = {k: doc[k] for k in ("devices", "seconds", "rss_growth", "fd_growth", "ok")}
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0 if doc["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
