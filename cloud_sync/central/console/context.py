"""What every console route needs: the accounts, the estate grants, the sign-in throttle, the
setup code and the clocks. One per central node (``console.db`` lives in its data folder)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request

from cloud_sync.central.console.grants import EstateGrants
from cloud_sync.central.console.roles import permissions_of, scopes_of
from cloud_sync.central.principal import Principal
from cloud_sync.webauth.accounts import AccountStore, User
from cloud_sync.webauth.throttle import LoginThrottle

__all__ = ["SETUP_CODE_FILE", "ConsoleContext", "console_of"]

SETUP_CODE_FILE = "console-setup-code"


@dataclass(slots=True)
class ConsoleContext:
    accounts: AccountStore
    grants: EstateGrants
    data_dir: Path
    setup_code: str | None
    secure_cookies: bool
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic

    def principal(self, user: User) -> Principal:
        estates = self.grants.estates_of(user.username)
        return Principal(
            name=user.username,
            scopes=scopes_of(user.role, limited=estates is not None),
            estates=estates,
            source="session",
        )

    def permissions(self, user: User) -> frozenset[str]:
        return permissions_of(user.role, limited=self.grants.estates_of(user.username) is not None)

    def close(self) -> None:
        self.grants.close()
        self.accounts.close()


def console_of(request: Request) -> ConsoleContext:
    ctx: ConsoleContext = request.app.state.console
    return ctx
