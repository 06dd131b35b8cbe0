"""The gateway daemon with a wall clock the harness can step: ``python -m chaos.clockstep``.

The machine's clock is never touched (other programs share it). The daemon is the same
``edge.app.Gateway`` that ``gatehouse run`` starts, given a :class:`SteppableClock` through its
clock seam. The harness writes the wanted offset in seconds to the file named by
``--offset-file`` and sends SIGUSR1; the clock's wall time jumps by that offset at once, as it
does when NTP steps a clock or an RTC-less gateway boots at the epoch and then syncs. The
monotonic clock is never stepped (the kernel's is not either).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path

__all__ = ["SteppableClock", "main"]


class SteppableClock:
    def __init__(self) -> None:
        self.offset_s = 0.0

    def wall(self) -> float:
        return time.time() + self.offset_s

    def monotonic(self) -> float:
        return time.monotonic()


async def _run(config: Path, offset_file: Path) -> int:
    from edge.app import Gateway
    from edge.config.loader import load_site

    site = load_site(config)
    clock = SteppableClock()
    loop = asyncio.get_running_loop()

    def step() -> None:
        try:
            clock.offset_s = float(offset_file.read_text().strip() or 0)
        except (OSError, ValueError) as exc:
            sys.stderr.write(f"chaos.clockstep: cannot read {offset_file}: {exc}\n")
            return
        sys.stderr.write(f"chaos.clockstep: wall clock offset now {clock.offset_s:+.0f} s\n")

    async with Gateway(site, clock=clock) as gateway:
        loop.add_signal_handler(signal.SIGUSR1, step)
        loop.add_signal_handler(signal.SIGTERM, gateway.stop)
        loop.add_signal_handler(signal.SIGINT, gateway.stop)
        await gateway.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.clockstep")
    parser.add_argument("--config", "-c", required=True, type=Path)
    parser.add_argument("--offset-file", required=True, type=Path)
    args = parser.parse_args(argv)
    from edge.logs import configure_logging

    configure_logging("info", json=True)
    return asyncio.run(_run(args.config, args.offset_file))


if __name__ == "__main__":
    sys.exit(main())
