"""cloud_sync's own small error tree (cloud_sync never imports ``edge``).

::

    SyncError
    ├── EnvelopeError      bytes that are not a well-formed batch envelope or ack (or too large)
    │   └── SignatureError the envelope is well formed but its signature does not verify
    ├── KeyFileError       a key file is missing, unreadable or not an Ed25519 key
    ├── CentralStoreError  central's database could not do what was asked
    └── ServiceStartError  central could not start (API port taken, TLS files unusable)
"""

from __future__ import annotations

__all__ = [
    "CentralStoreError",
    "EnvelopeError",
    "KeyFileError",
    "ServiceStartError",
    "SignatureError",
    "SyncError",
]


class SyncError(Exception):
    """Root of every error cloud_sync raises on purpose."""


class EnvelopeError(SyncError):
    """Malformed, truncated or oversize envelope; ``reason`` is a short stable code for audits."""

    def __init__(self, message: str, *, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


class SignatureError(EnvelopeError):
    def __init__(self, message: str, *, reason: str = "bad_signature") -> None:
        super().__init__(message, reason=reason)


class KeyFileError(SyncError):
    pass


class CentralStoreError(SyncError):
    pass


class ServiceStartError(SyncError):
    pass
