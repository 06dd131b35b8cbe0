"""`gatehouse users …`: dashboard accounts from the gateway's shell, for when nobody can log in.

    gatehouse users list --config SITE.yaml
    gatehouse users reset-password --config SITE.yaml USER [--password-stdin]
    gatehouse users unlock --config SITE.yaml USER [--from ADDRESS]

``reset-password`` sets a new password (asked twice on the terminal, or one line on stdin),
unlocks the account and ends its sessions; it is the way back in for an administrator who is
locked out or has forgotten the password. Shell access to the gateway is the authority here,
so every change is written to the dashboard's audit log as done by ``shell``. Safe while the
gateway runs (the database is in WAL mode). Sign-in failures lock an account per client
address: ``list`` shows the addresses an account is locked from, ``unlock`` clears them all (or
the one given with ``--from``).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from pathlib import Path
from typing import Any

import structlog

from core.errors import ConfigError, StorageError

_LOG = structlog.get_logger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "users",
        help="dashboard accounts: list, reset a password, unlock",
        description="Manage the LAN dashboard's accounts from the gateway's shell.",
    )
    actions = parser.add_subparsers(dest="users_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list the accounts")
    reset = actions.add_parser("reset-password", help="set a new password, unlock, end sessions")
    unlock = actions.add_parser("unlock", help="unlock an account locked by failed logins")
    for action in (listing, reset, unlock):
        action.add_argument("--config", "-c", required=True, type=Path, help="the site file (YAML)")
    for action in (reset, unlock):
        action.add_argument("user", help="the account name")
    reset.add_argument("--password-stdin", action="store_true", help="read the new password from stdin")
    unlock.add_argument(
        "--from", dest="source", metavar="ADDRESS", help="only the lock from this client address"
    )
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from edge.config.loader import load_site
    from edge.dashboard.accounts import AccountStore
    from edge.dashboard.config import dashboard_config

    try:
        site = load_site(args.config)
        raw = site.config.dashboard
        if raw is None:
            print(f"gatehouse users: {args.config} has no 'dashboard:' section", file=sys.stderr)
            return EXIT_CONFIG
        config = dashboard_config(raw, site)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:
        print(f"gatehouse users: cannot read {args.config}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_CONFIG
    db_path = site.data_dir / config.db
    if not db_path.is_file():
        print(
            f"gatehouse users: {db_path} does not exist yet: start the gateway and use the first-start setup"
        )
        return EXIT_FAILED
    try:
        store = AccountStore(db_path, lockout_min=config.lockout_min)
    except StorageError as exc:
        print(f"gatehouse users: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        if args.users_action == "list":
            return _list(store)
        if store.get_user(args.user) is None:
            known = ", ".join(u.username for u in store.users()) or "none"
            print(f"gatehouse users: no account {args.user!r} (accounts: {known})", file=sys.stderr)
            return EXIT_FAILED
        if args.users_action == "unlock":
            cleared = store.unlock(args.user, args.source)
            detail = "unlock" if args.source is None else f"unlock from {args.source}"
            store.audit(now=time.time(), user="shell", ip=None, action="user_update", target=args.user,
                        detail=detail)  # fmt: skip
            where = "every address" if args.source is None else args.source
            print(f"unlocked {args.user} from {where} ({cleared} address(es) had failures)")
            return EXIT_OK
        return _reset(store, args.user, from_stdin=args.password_stdin)
    finally:
        store.close()


def _list(store: Any) -> int:
    now = time.time()
    for user in store.users():
        sources = store.locked_sources(user.username, now)
        locked = f"locked from {','.join(sources)}" if sources else ""
        flags = [f for f, on in (("disabled", user.disabled), (locked, bool(sources))) if on]
        print(f"{user.username}\t{user.role}\t{user.name}\t{' '.join(flags)}")
    return EXIT_OK


def _reset(store: Any, username: str, *, from_stdin: bool) -> int:
    from edge.dashboard.accounts import check_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"new password for {username}: ")
        if getpass.getpass("again: ") != password:
            print("gatehouse users: the two passwords differ; nothing changed", file=sys.stderr)
            return EXIT_FAILED
    try:
        check_password(password)
    except ValueError as exc:
        print(f"gatehouse users: {exc}", file=sys.stderr)
        return EXIT_FAILED
    asyncio.run(store.set_password(username, password))
    store.audit(now=time.time(), user="shell", ip=None, action="user_update", target=username,
                detail="password,unlock")  # fmt: skip
    print(f"password of {username} set; the account is unlocked and its sessions ended")
    return EXIT_OK
