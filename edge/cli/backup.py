"""`gatehouse backup` and `gatehouse restore`: encrypted online backups of a gateway (R3.4, R4.6).

``backup`` is safe while the daemon runs (SQLite's backup API); ``restore`` must run while it is
stopped. The passphrase comes from ``--passphrase-file`` or ``$GATEHOUSE_BACKUP_PASSPHRASE``,
never from the command line (it would show in ``ps``). See ``edge.backup``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from core.errors import ConfigError, GatehouseError

_ENV = "GATEHOUSE_BACKUP_PASSPHRASE"


def register(sub: Any) -> None:
    backup: argparse.ArgumentParser = sub.add_parser("backup", help="encrypted online backup of the gateway")
    backup.add_argument("--config", "-c", required=True, type=Path, help="the site file")
    backup.add_argument(
        "--to",
        required=True,
        help="folder for the archives, or s3://BUCKET/PREFIX (credentials: AWS_* variables or ~/.aws)",
    )
    backup.add_argument("--passphrase-file", type=Path, help=f"file with the passphrase (else ${_ENV})")
    backup.add_argument("--keep", type=int, default=0, help="keep only the newest N archives (0: all)")
    backup.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    backup.set_defaults(handler=_backup)

    restore: argparse.ArgumentParser = sub.add_parser(
        "restore", help="check and restore a backup (the gateway must be stopped)"
    )
    restore.add_argument("archive", help="the archive: a file, or s3://BUCKET/KEY")
    restore.add_argument(
        "--data-dir", type=Path, help="where the databases go (default: the site's data_dir)"
    )
    restore.add_argument("--config", "-c", type=Path, help="the site file (for its data_dir)")
    restore.add_argument("--site-dir", type=Path, help="also restore the site file and keys into this folder")
    restore.add_argument("--passphrase-file", type=Path, help=f"file with the passphrase (else ${_ENV})")
    restore.add_argument("--check", action="store_true", help="only verify the archive; write nothing")
    restore.add_argument("--force", action="store_true", help="overwrite databases in the data folder")
    restore.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    restore.set_defaults(handler=_restore)


def _passphrase(args: argparse.Namespace) -> bytes:
    if args.passphrase_file is not None:
        try:
            text = args.passphrase_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise GatehouseError(f"cannot read {args.passphrase_file}: {exc.strerror}") from exc
    else:
        text = os.environ.get(_ENV, "")
    if not text:
        raise GatehouseError(f"no passphrase: give --passphrase-file or set ${_ENV}")
    encoded: bytes = text.encode()
    return encoded


class _Bar:
    """A one-line progress bar on stderr (only on a terminal, or when asked)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._last = ""

    def __call__(self, what: str, done: int, total: int) -> None:
        if self.quiet:
            return
        share = done / total if total else 1.0
        filled = int(30 * share)
        line = f"\r{what:<28} [{'#' * filled}{'.' * (30 - filled)}] {100 * share:5.1f} %"
        if line != self._last:
            sys.stderr.write(line)
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()
            self._last = line


def _version() -> str:
    from importlib import metadata  # noqa: PLC0415 - pulls in email and zipfile; only a backup needs it

    try:
        return metadata.version("gatehouse")
    except metadata.PackageNotFoundError:
        return "unknown"


def _logging() -> None:
    """Log lines to stderr (warnings up): stdout carries the archive's path, for scripts."""
    from edge.logs import configure_logging

    configure_logging("warning", json=not sys.stderr.isatty())


def _backup(args: argparse.Namespace) -> int:
    import tempfile

    from edge.backup import SUFFIX, create_backup, rotate
    from edge.backup_remote import S3Target, is_remote
    from edge.config.loader import load_site

    _logging()

    try:
        site = load_site(args.config)
        passphrase = _passphrase(args)
        removed: list[Any]
        if is_remote(args.to):
            remote = S3Target.parse(args.to)
            with tempfile.TemporaryDirectory(prefix="gatehouse-backup-") as tmp:
                bar = _Bar(args.quiet)
                made = create_backup(site, Path(tmp), passphrase, progress=bar, version=_version())
                path: Any = remote.upload(made)
            removed = remote.rotate(args.keep, SUFFIX) if args.keep > 0 else []
        else:
            folder = Path(args.to)
            path = create_backup(site, folder, passphrase, progress=_Bar(args.quiet), version=_version())
            removed = rotate(folder, args.keep) if args.keep > 0 else []
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except GatehouseError as exc:
        print(f"gatehouse backup: {exc}", file=sys.stderr)
        return 1
    print(path)
    for old in removed:
        print(f"removed old backup {old}", file=sys.stderr)
    return 0


def _data_dir(args: argparse.Namespace) -> Path:
    if args.data_dir is not None:
        return Path(args.data_dir)
    if args.config is None:
        raise GatehouseError("give --data-dir or --config")
    from edge.config.loader import load_site

    return Path(load_site(args.config).data_dir)


def _restore(args: argparse.Namespace) -> int:
    import contextlib
    import tempfile

    from edge.backup import describe, restore_backup, verify
    from edge.backup_remote import download, is_remote

    _logging()

    try:
        passphrase = _passphrase(args)
        bar = _Bar(args.quiet)
        with contextlib.ExitStack() as stack:
            archive = Path(args.archive)
            if is_remote(args.archive):
                fetched = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gatehouse-fetch-")))
                archive = download(args.archive, fetched)
            if args.check:
                with tempfile.TemporaryDirectory(prefix="gatehouse-verify-") as tmp:
                    manifest = verify(archive, passphrase, Path(tmp) / "x", bar)
                print(describe(manifest), end="")
                print("backup is complete and intact")
                return 0
            data_dir = _data_dir(args)
            result = restore_backup(
                archive, passphrase, data_dir, site_dir=args.site_dir, force=args.force, progress=bar
            )
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except GatehouseError as exc:
        print(f"gatehouse restore: {exc}", file=sys.stderr)
        return 1
    print(describe(result["manifest"]), end="")
    for path in result["restored"]:
        print(f"restored {path}")
    for lane, after in sorted(result["seq"].items()):
        print(
            f"outbox {lane} lane continues after sequence {after} (skipped numbers are declared to central)"
        )
    return 0
