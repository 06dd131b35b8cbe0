"""``python -m simulators.opcua --port P``: serve the pump station and the lift group until
interrupted, printing the endpoint and where the server certificate is (for a trust list)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

from simulators.opcua.models import LiftGroup, PumpStation
from simulators.opcua.server import OpcUaSimulator

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulators.opcua", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4840)
    parser.add_argument(
        "--pki-dir", type=Path, default=Path("demo-data/opcua-sim"), help="server certificate"
    )
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD", help="repeatable")
    parser.add_argument("--anonymous", action="store_true", help="also accept anonymous sessions")
    parser.add_argument(
        "--insecure", action="store_true", help="also offer and accept the None security policy (tests only)"
    )
    parser.add_argument("--cars", type=int, default=3, help="lift cars")
    parser.add_argument(
        "--scenario", action="append", default=[], metavar="MODEL:NAME", help="e.g. PumpStation1:pump1_fault"
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    users = dict(u.split(":", 1) for u in args.user) if args.user else None
    models = [PumpStation(), LiftGroup(cars=args.cars)]
    async with OpcUaSimulator(
        models,
        pki_dir=args.pki_dir,
        host=args.host,
        port=args.port,
        users=users,
        allow_anonymous=args.anonymous,
        insecure=args.insecure,
    ) as sim:
        for item in args.scenario:
            model, _, name = item.partition(":")
            await sim.scenario(model, name)
        sys.stdout.write(f"OPC UA simulator on {sim.endpoint}\nserver certificate: {sim.certificate_path}\n")
        sys.stdout.flush()
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
