"""`gatehouse buffer stats`: what the outbox holds, per lane, read-only (safe while running)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from core.errors import ConfigError, StorageError
from edge.config.loader import load_site
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
    retention: dict[str, Any] | None = None
    try:
        if args.db is not None:
            path = args.db
        else:
            from edge.retention import retention_report

            site = load_site(args.config)
            path = site.outbox_path
            retention = retention_report(site)
        stats = read_stats(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except StorageError as exc:
        print(f"gatehouse buffer stats: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(
            json.dumps(
                stats if retention is None else {**stats, "retention": retention}, indent=2, sort_keys=True
            )
        )
    else:
        print(format_stats(stats, now_s=time.time()))
        if retention is not None:
            print(_format_retention(retention, time.time()))
    return 0


def _format_retention(report: dict[str, Any], now_s: float) -> str:
    def oldest(ts: float | None) -> str:
        return "-" if ts is None else f"{(now_s - ts) / 86400:.1f} days ago"

    alarms, passages, telemetry = report["alarms"], report["passages"], report["telemetry"]
    deleted = report["deleted_devices"]
    lines = [
        "retention        kept               rows  oldest",
        f"alarms           {alarms['keep_days']:>6g} days   {alarms['rows'] or 0:>10}  "
        f"{oldest(alarms['oldest_ts'])}",
        f"passages         {passages['keep_days']:>6g} days   {passages['rows'] or 0:>10}  "
        f"{oldest(passages['oldest_ts'])} ({passages['devices']} devices)",
        f"telemetry        by quota ({telemetry['quota_bytes'] / 1e6:.0f} MB outbox; trends "
        f"{telemetry['trend_days']:g} days)",
        f"deleted devices  {deleted['keep_days']:>6g} days   {len(deleted['devices']):>10}  devices",
        f"audit            {report['audit']['keep_days']:>6g} days",
    ]
    return "\n".join(lines)
