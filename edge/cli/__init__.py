"""The ``gatehouse`` command. Each subcommand lives in its own module with a ``register``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edge.cli import backup as backup_cmd
from edge.cli import buffer, central, certs, check, discover, run, simulate, site_csv, users
from edge.cli import enroll as enroll_cmd
from edge.cli import rules as rules_cmd
from edge.cli import trust as trust_cmd

__all__ = ["main"]

_COMMANDS = (
    run,
    check,
    discover,
    buffer,
    central,
    certs,
    simulate,
    rules_cmd,
    users,
    backup_cmd,
    site_csv,
    enroll_cmd,
    trust_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatehouse",
        description="Gatehouse: IoT edge gateway and cloud sync agent for estates and buildings.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    code: int = handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
