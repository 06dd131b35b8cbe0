"""`gatehouse check SITE.yaml`: validate a site file and the profiles it uses, report every problem.

Exit status: 0 when the site is clean, 1 when it has problems (one line each, as
``file:line:col: path: message``, then a count), 2 when the file cannot be read at all.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import structlog

from core.errors import ConfigError
from edge.config.loader import load_site

_LOG = structlog.get_logger(__name__)

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_UNREADABLE = 2


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "check",
        help="validate a site file and the profiles it uses",
        description="Validate a site file and every profile it names; report every problem found.",
    )
    parser.add_argument("site", type=Path, metavar="SITE.yaml", help="the site file")
    parser.add_argument(
        "--profiles",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="extra profile folder, searched before the site's own and the bundled ones (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    site_path: Path = args.site
    as_json: bool = args.json
    try:
        site = load_site(site_path, profile_dirs=args.profiles)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if as_json:
            _print_json({"ok": False, "error": f"cannot read {site_path}: {reason}", "problems": []})
        else:
            print(f"{site_path}: cannot read: {reason}")
        return EXIT_UNREADABLE
    except ConfigError as exc:
        if as_json:
            problems = [
                {"file": p.file, "line": p.line, "column": p.column, "path": p.path, "message": p.message}
                for p in exc.problems
            ]
            _print_json({"ok": False, "problems": problems})
        else:
            for problem in exc.problems:
                print(problem)
            count = len(exc.problems)
            print(f"{count} problem{'' if count == 1 else 's'}")
        return EXIT_PROBLEMS
    points = sum(len(d.points) for d in site.devices)
    if as_json:
        _print_json(
            {
                "ok": True,
                "site": site.id,
                "devices": len(site.devices),
                "points": points,
                "profiles": sorted(site.profiles),
                "problems": [],
            }
        )
    else:
        print(f"ok: site {site.id}, {len(site.devices)} devices, {points} points")
    return EXIT_OK


def _print_json(payload: dict[str, Any]) -> None:
    print(json.dumps(payload, ensure_ascii=False, indent=2))
