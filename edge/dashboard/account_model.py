"""The records of dashboard accounts (roles and their permissions, users, sessions, sign-in
outcomes): ``cloud_sync.webauth.account_model``."""

from __future__ import annotations

from cloud_sync.webauth.account_model import (
    ROLES,
    LoginResult,
    Session,
    User,
    permissions_of,
    refusal,
    user_from_row,
)

__all__ = ["ROLES", "LoginResult", "Session", "User", "permissions_of", "refusal", "user_from_row"]
