"""The dashboard's one-time setup code (``DATA_DIR/dashboard-setup-code``):
``cloud_sync.webauth.setup_code`` (central's console keeps its own code file the same way)."""

from __future__ import annotations

from cloud_sync.webauth.setup_code import (
    SETUP_CODE_FILE,
    matches,
    new_setup_code,
    read_setup_code,
    remove_setup_code,
)

__all__ = ["SETUP_CODE_FILE", "matches", "new_setup_code", "read_setup_code", "remove_setup_code"]
