"""Keep a process's :class:`KeyRegistry` in step with ``trust.db``.

Every central process (the API, each ``--workers`` ingest process) runs :meth:`TrustWatcher.run`:
it reads the store's generation counter twice a second and, when it moved, loads all trusted
gateways and their keys and swaps them into the registry. The API process also calls
:meth:`TrustWatcher.check` right after its own writes, so an enrolment is usable at once there.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Final

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cloud_sync.central.ingest import KeyRegistry, TrustedGateway
from cloud_sync.central.trust.store import TrustStore
from cloud_sync.errors import CentralStoreError, KeyFileError
from cloud_sync.keys import parse_public_key

__all__ = ["POLL_S", "TrustWatcher", "trusted_gateways"]

_LOG = structlog.get_logger(__name__)

POLL_S: Final = 0.5


def trusted_gateways(store: TrustStore) -> dict[str, TrustedGateway]:
    keys_of: dict[str, dict[str, tuple[Ed25519PublicKey, float | None]]] = {}
    for key in store.signing_keys():
        try:
            public_key = parse_public_key(key.pem, origin=f"trust.db key {key.kid} of {key.gateway_id}")
        except KeyFileError as exc:  # stored re-encoded at enrolment, so this means a damaged row
            _LOG.error("unusable key in the trust store", gateway=key.gateway_id, kid=key.kid, error=str(exc))
            continue
        keys_of.setdefault(key.gateway_id, {})[key.kid] = (public_key, key.valid_until)
    return {
        gw.id: TrustedGateway(
            estate=gw.estate,
            name=gw.name,
            revoked=gw.revoked,
            keys=keys_of.get(gw.id, {}),
        )
        for gw in store.gateways()
    }


class TrustWatcher:
    def __init__(self, store: TrustStore, registry: KeyRegistry) -> None:
        self.store = store
        self.registry = registry
        self._seen: int | None = None
        self._lock = threading.Lock()

    def check(self) -> bool:
        """Reload when the store changed since the last look; True when it did."""
        with self._lock:
            generation = self.store.generation()
            if generation == self._seen:
                return False
            self.registry.replace_trusted(trusted_gateways(self.store))
            self._seen = generation
        _LOG.info("trusted gateways reloaded", generation=generation)
        return True

    async def run(self, *, poll_s: float = POLL_S) -> None:
        while True:
            try:
                await asyncio.to_thread(self.check)
            except CentralStoreError as exc:
                _LOG.error("trust store not readable", error=str(exc))
            await asyncio.sleep(poll_s)
