"""Central's trust (issue 15): enrolment tokens, CSR signing by central's CA, renewal,
revocation, and the broker files that follow them (docs/trust.md).

* :mod:`.store` — ``trust.db`` (tokens, gateways, keys, certificates, audit; a change counter);
* :mod:`.protocol` — pure: tokens, the renewal signature, key parsing;
* :mod:`.broker_files` / :mod:`.broker_access` — the ACL, password file and CRL text, and
  writing them atomically and reloading Mosquitto;
* :mod:`.service` — :class:`TrustService`, the operations;
* :mod:`.watch` — keeps each process's ``KeyRegistry`` in step with ``trust.db``;
* :mod:`.routes` — ``/api/v1/enroll`` (public) and the ``trust``-scope administration routes.
"""

from __future__ import annotations

from cloud_sync.central.trust.routes import enroll_command, enrolment_router, trust_router
from cloud_sync.central.trust.service import (
    RevokeHook,
    RevokeResult,
    TrustError,
    TrustRefused,
    TrustService,
    load_trust_ca,
)
from cloud_sync.central.trust.store import TRUST_DB, TrustStore
from cloud_sync.central.trust.watch import TrustWatcher

__all__ = [
    "TRUST_DB",
    "RevokeHook",
    "RevokeResult",
    "TrustError",
    "TrustRefused",
    "TrustService",
    "TrustStore",
    "TrustWatcher",
    "enroll_command",
    "enrolment_router",
    "load_trust_ca",
    "trust_router",
]
