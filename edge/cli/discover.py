"""`gatehouse discover PROTOCOL ...`: find devices on a network and write a ready site-file fragment.

Each protocol that can discover devices names its discovery module in the driver registry
(``Protocol_.discover``); this command only dispatches, so a new protocol needs no change here.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from drivers.registry import protocols

__all__ = ["register"]


def _discoverable() -> dict[str, str]:
    return {name: spec.discover for name, spec in protocols().items() if spec.discover is not None}


def register(sub: Any) -> None:
    names = sorted(_discoverable())
    parser: argparse.ArgumentParser = sub.add_parser(
        "discover",
        help="find devices (" + ", ".join(names) + ") and write a site-file fragment",
        description="Find devices of one protocol and write a site-file fragment that "
        "`gatehouse check` accepts. `gatehouse discover PROTOCOL --help` lists its options.",
        add_help=True,
    )
    parser.add_argument("protocol", choices=names, help="the protocol to discover")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the protocol's own options")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    module = importlib.import_module(_discoverable()[args.protocol])
    code: int = module.main(list(args.args))
    return code
