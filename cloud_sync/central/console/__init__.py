"""Central's console: the fleet operator's web dashboard (docs/central-dashboard.md).

Accounts, sessions, roles limited to estates, lockout and audit in ``console.db`` (per central
node), and a static client that reads central's ``/api/v1`` with the session cookie.
"""

from __future__ import annotations

from cloud_sync.central.console.mount import console_data_dir, mount_console

__all__ = ["console_data_dir", "mount_console"]
