"""Per-source throttling of sign-in and setup attempts: ``cloud_sync.webauth.throttle`` (shared
with central's console)."""

from __future__ import annotations

from cloud_sync.webauth.throttle import LoginThrottle

__all__ = ["LoginThrottle"]
