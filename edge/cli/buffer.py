"""`gatehouse buffer stats`: what the outbox holds, per lane, read-only (safe while running)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from edge.config.loader import load_site
from edge.errors import ConfigError, StorageError
from edge.outbox.stats import format_stats, read_stats


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("buffer", help="inspect the outbox buffer")
    actions = parser.add_subparsers(dest="buffer_command", required=True, metavar="ACTION")
    stats = actions.add_parser(
        "stats", help="backlog per lane: rows, sealed batches, bytes, oldest record, last seq"
    )
    where = stats.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="site file; the outbox path is taken from it")
    where.add_argument("--db", type=Path, help="the outbox database file itself")
    stats.add_argument("--json", action="store_true", help="print JSON for machines")
    stats.set_defaults(handler=_stats)


def _outbox_path(config: Path) -> Path:
    return load_site(config).outbox_path


def _stats(args: argparse.Namespace) -> int:
    try:
        path = args.db if args.db is not None else _outbox_path(args.config)
        stats = read_stats(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except StorageError as exc:
        print(f"gatehouse buffer stats: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(stats, indent=2, sort_keys=True))
    else:
        print(format_stats(stats, now_s=time.time()))
    return 0
