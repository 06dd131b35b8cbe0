"""What central would answer, made in-process: a CA that signs the gateway's CSR and the keys
central pins. For unit tests of the gateway side; the integration tests talk to real HTTPS."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud_sync.certs import CertificateAuthority, PkiLayout, certificate_pem, create_ca, sign_csr
from cloud_sync.keys import public_key_pem, x25519_public_pem
from edge.identity.material import KeySet

DAY = 86_400.0


@dataclass
class Central:
    ca: CertificateAuthority
    signing_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    e2e_key: X25519PrivateKey | None = field(default_factory=X25519PrivateKey.generate)
    password: str | None = None

    def grant(
        self, keys: KeySet, *, gateway_id: str = "gw-test", now: float | None = None, days: int = 30
    ) -> dict[str, Any]:
        now = time.time() if now is None else now
        cert = sign_csr(
            self.ca,
            keys.csr,
            common_name=gateway_id,
            now=dt.datetime.fromtimestamp(now, dt.UTC),
            valid_days=days,
        )
        return {
            "gateway_id": gateway_id,
            "estate": "estate-a",
            "name": None,
            "client_cert": certificate_pem(cert),
            "ca_cert": certificate_pem(self.ca.cert),
            "broker": {"host": "127.0.0.1", "port": 8883, "username": gateway_id, "password": self.password},
            "central_signing_key": public_key_pem(self.signing_key.public_key()),
            "central_e2e_key": None if self.e2e_key is None else x25519_public_pem(self.e2e_key.public_key()),
            "encrypt": "off" if self.e2e_key is None else "x25519-aes256gcm",
            "not_after": now + days * DAY,
            "renew_after": now + (days - 10) * DAY,
            "kid": keys.kid,
        }


def make_central(tmp: Path, **kwargs: Any) -> Central:
    ca = create_ca(PkiLayout(tmp / "central-pki"), now=dt.datetime.now(dt.UTC))
    return Central(ca, **kwargs)
