"""``python -m simulators.bacnet --devices N --base-port P``: N simulated BACnet devices on one
IP, ports P, P+1, ...; the models rotate air handler, chilled-water plant, smoke fans (or
``--model``). Prints each device's instance and address, runs until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys

from simulators.bacnet.models import MODELS
from simulators.bacnet.server import BacnetSimulator, SimSpec

_ROTATION = ("ahu", "chiller", "smoke-fans")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulators.bacnet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=3)
    parser.add_argument("--base-port", type=int, default=47809, help="first UDP port (0: free ports)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--first-instance", type=int, default=1001)
    parser.add_argument(
        "--model", choices=sorted(MODELS), action="append", help="models to rotate (repeatable)"
    )
    parser.add_argument("--duration-s", type=float, help="stop after this many seconds")
    return parser


async def _run(args: argparse.Namespace) -> None:
    models = args.model or list(_ROTATION)
    specs = [
        SimSpec(
            args.first_instance + i,
            MODELS[models[i % len(models)]](),
            port=0 if args.base_port == 0 else args.base_port + i,
        )
        for i in range(args.devices)
    ]
    async with BacnetSimulator(specs, host=args.host) as sim:
        for row in sim.describe():
            sys.stdout.write(json.dumps(row) + "\n")
        sys.stdout.flush()
        if args.duration_s is not None:
            await asyncio.sleep(args.duration_s)
        else:
            await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
