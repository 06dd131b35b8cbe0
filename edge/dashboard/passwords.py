"""Password hashing for dashboard accounts: ``cloud_sync.webauth.passwords`` (central's console
uses the same scrypt hashes)."""

from __future__ import annotations

from cloud_sync.webauth.passwords import (
    DUMMY_HASH,
    MIN_PASSWORD,
    check_password,
    hash_password,
    verify_password,
)

__all__ = ["DUMMY_HASH", "MIN_PASSWORD", "check_password", "hash_password", "verify_password"]
