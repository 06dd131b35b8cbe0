"""``python -m cloud_sync.central.console``: the console's on-server account tools.

``users DB`` lists the accounts (role, estates, the addresses each is locked from);
``unlock DB USER [--from ADDRESS]`` clears a sign-in lockout — the path back in when the only
administrator has locked itself out. ``DB`` is central's ``console.db``. Run it as central's
user on the central node (it is per node).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cloud_sync.central.console.grants import EstateGrants
from cloud_sync.central.console.mount import LOCKOUT_MIN
from cloud_sync.central.console.roles import CONSOLE_ROLES
from cloud_sync.webauth.accounts import AccountStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloud_sync.central.console")
    sub = parser.add_subparsers(dest="command", required=True)
    users = sub.add_parser("users", help="list the console accounts")
    users.add_argument("db", type=Path)
    unlock = sub.add_parser("unlock", help="clear a sign-in lockout")
    unlock.add_argument("db", type=Path)
    unlock.add_argument("user")
    unlock.add_argument("--from", dest="source", default=None, help="one address only (default: all)")
    args = parser.parse_args(argv)
    if not args.db.exists():
        sys.stderr.write(f"{args.db}: no such console database\n")
        return 2
    accounts = AccountStore(args.db, lockout_min=LOCKOUT_MIN, roles=frozenset(CONSOLE_ROLES))
    grants = EstateGrants(args.db)
    try:
        if args.command == "users":
            now = time.time()
            for user in accounts.users():
                estates = grants.estates_of(user.username)
                locked = ",".join(accounts.locked_sources(user.username, now)) or "-"
                where = ",".join(sorted(estates)) if estates else "*"
                state = "disabled" if user.disabled else "enabled"
                sys.stdout.write(
                    f"{user.username}\t{user.role}\testates={where}\t{state}\tlocked_from={locked}\n"
                )
            return 0
        if accounts.get_user(args.user) is None:
            sys.stderr.write(f"no console account {args.user!r}\n")
            return 1
        cleared = accounts.unlock(args.user, args.source)
        accounts.audit(now=time.time(), user=None, ip=None, action="unlock", target=args.user,
                       detail=f"on the server, {cleared} address(es)")  # fmt: skip
        sys.stdout.write(f"{args.user}: unlocked ({cleared} address(es))\n")
        return 0
    finally:
        grants.close()
        accounts.close()


if __name__ == "__main__":
    sys.exit(main())
