"""`gatehouse export devices SITE.yaml` and `gatehouse import SHEET.csv --into SITE.yaml` (R5.2).

Export writes the site's buses, devices and points as one CSV sheet (UTF-8 with a BOM, so Excel
opens Chinese names correctly). Import replaces the ``buses:`` and ``devices:`` of the site file
with the sheet's, keeping every other section and its comments, but only if the result passes the
same checks as ``gatehouse check``; otherwise it prints each problem as ``SHEET:ROW:COLUMN:
message`` and changes nothing. See ``edge.site_io``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from core.errors import ConfigError
from edge.site_io import CsvError, decode_csv, export_site_file, import_rows, locate_problems, merge_into


def register(sub: Any) -> None:
    export: argparse.ArgumentParser = sub.add_parser("export", help="export buses, devices and points as CSV")
    export.add_argument("what", choices=("devices",), help="what to export")
    export.add_argument("site", type=Path, help="the site file")
    export.add_argument("--output", "-o", type=Path, help="write here instead of standard output")
    export.set_defaults(handler=_export)
    imp: argparse.ArgumentParser = sub.add_parser("import", help="import buses, devices and points from CSV")
    imp.add_argument("sheet", type=Path, help="the CSV file (UTF-8 or GB18030)")
    imp.add_argument("--into", required=True, type=Path, help="the site file to update")
    imp.add_argument("--dry-run", action="store_true", help="check only; do not write the site file")
    imp.set_defaults(handler=_import)


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def _export(args: argparse.Namespace) -> int:
    try:
        data = export_site_file(args.site)
    except OSError as exc:
        print(f"gatehouse export: cannot read {args.site}: {exc.strerror}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"gatehouse export: {exc}", file=sys.stderr)
        return 2
    if args.output is not None:
        args.output.write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def _import(args: argparse.Namespace) -> int:
    from edge.config.loader import load_site

    name = str(args.sheet)
    try:
        imported = import_rows(decode_csv(args.sheet.read_bytes()))
        with args.into.open(encoding="utf-8") as fh:
            doc = _yaml().load(fh)
    except CsvError as exc:
        for p in exc.problems:
            print(f"{name}:{p.row}:{p.column}: {p.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"gatehouse import: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    merge_into(doc, imported)
    folder = args.into.resolve().parent
    fd, tmp_name = tempfile.mkstemp(prefix=".import-", suffix=".yaml", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            _yaml().dump(doc, fh)
        try:
            site = load_site(tmp)
        except ConfigError as exc:
            located, other = locate_problems(exc, imported)
            for p in sorted(located, key=lambda p: (p.row, p.column)):
                print(f"{name}:{p.row}:{p.column}: {p.message}", file=sys.stderr)
            for q in other:
                print(f"{args.into}: {q.path}: {q.message}", file=sys.stderr)
            print(
                f"gatehouse import: {len(exc.problems)} problem(s); {args.into} not changed", file=sys.stderr
            )
            return 1
        if args.dry_run:
            print(f"{name}: {len(imported.buses)} buses, {len(site.devices)} devices: valid (dry run)")
            return 0
        os.replace(tmp, args.into)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"{args.into}: {len(imported.buses)} buses, {len(imported.devices)} devices imported from {name}")
    return 0
