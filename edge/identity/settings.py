"""An identity folder as ``uplink:`` settings (``cloud_sync.uplink.UplinkConfig`` keys). Pure.

The site file may still set any of these keys itself; what it sets wins (a broker reached through
a local name, a CA bundle of the site's own). Settings that only make sense together are taken
or left together: a client certificate with its key, a password given inline or in a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge.identity.folder import Identity

__all__ = ["merge_settings", "uplink_settings"]

_TOGETHER = (("client_cert", "client_key"), ("password", "password_file"))


def uplink_settings(identity: Identity) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "gateway_id": identity.gateway_id,
        "broker_host": identity.broker_host,
        "broker_port": identity.broker_port,
        "ca_file": str(identity.file("ca.crt")),
        "client_cert": str(identity.file("client.crt")),
        "client_key": str(identity.file("client.key")),
        "signing_key": str(identity.file("signing.key")),
        "central_key": str(identity.file("central-signing.pub")),
        "e2e_key": str(identity.file("e2e.key")),
        "encrypt": identity.encrypt,
    }
    if identity.central_e2e_key_id is not None:
        settings["central_e2e_key"] = str(identity.file("central-e2e.pub"))
    if identity.username is not None:
        settings["username"] = identity.username
    if identity.has_password:
        settings["password_file"] = str(identity.file("password"))
    return settings


def merge_settings(explicit: Mapping[str, Any], identity: Identity) -> dict[str, Any]:
    """``explicit`` (the site file's keys) over the identity's."""
    from_identity = uplink_settings(identity)
    for group in _TOGETHER:
        if any(key in explicit for key in group):
            for key in group:
                from_identity.pop(key, None)
    return {**from_identity, **explicit}
