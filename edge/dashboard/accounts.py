"""Dashboard accounts in SQLite: users, sessions, the audit log and login lockout (R4.4, R4.5).

The store is ``cloud_sync.webauth.accounts`` (central's console uses it too); here it raises
the gateway's ``StorageError`` when its database cannot be opened.
"""

from __future__ import annotations

from cloud_sync.webauth.accounts import (
    MIN_PASSWORD,
    ROLES,
    LoginResult,
    Session,
    User,
    check_password,
    hash_password,
    permissions_of,
    verify_password,
)
from cloud_sync.webauth.accounts import AccountStore as _AccountStore
from core.errors import StorageError

__all__ = [
    "MIN_PASSWORD",
    "ROLES",
    "AccountStore",
    "LoginResult",
    "Session",
    "User",
    "check_password",
    "hash_password",
    "permissions_of",
    "verify_password",
]


class AccountStore(_AccountStore):
    open_error = StorageError
