"""``TrustService``: tokens, enrolment, renewal and revocation over the trust store, the CA and
the broker files. Used by the API routes, and by ``gatehouse trust`` directly on ``trust.db``.

Methods are synchronous (SQLite, a signature, small files) apart from :meth:`revoke`, which first
awaits the ``before_revoke`` hooks: the lead's hook sends the gateway a signed ``gateway.revoked``
command while the gateway can still read its ``cmd`` topic, and only then is access cut.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import structlog

from cloud_sync.central.config import CentralConfig, TrustConfig
from cloud_sync.central.trust.broker_access import (
    AccessFiles,
    ReloadResult,
    reload_broker,
    write_access_files,
)
from cloud_sync.central.trust.broker_files import render_acl, render_passwords
from cloud_sync.central.trust.protocol import (
    RENEW_MAX_SKEW_S,
    MalformedRequest,
    new_token,
    parse_public_keys,
    renew_message,
    token_digest,
    verify_renewal,
)
from cloud_sync.central.trust.store import GatewayRow, Issued, KeyRow, TokenRow, TrustStore, audit_row
from cloud_sync.certs import (
    CertificateAuthority,
    PkiError,
    build_crl,
    certificate_pem,
    load_ca_files,
    new_password,
    password_line,
    sign_csr,
    validate_client_name,
)
from cloud_sync.keys import (
    key_id,
    load_private_key,
    load_x25519_private,
    parse_public_key,
    public_key_pem,
    x25519_public_pem,
)

__all__ = [
    "DEFAULT_TOKEN_S",
    "RevokeHook",
    "RevokeResult",
    "TrustError",
    "TrustRefused",
    "TrustService",
    "load_trust_ca",
]

_LOG = structlog.get_logger(__name__)

DEFAULT_TOKEN_S: Final = 24 * 3600.0
_MIN_TOKEN_S: Final = 60.0
_DAY_S: Final = 86400.0
_HOOK_TIMEOUT_S: Final = 10.0
E2E_SUITE: Final = "x25519-aes256gcm"

# (gateway_id, reason): awaited before a revocation cuts the gateway off.
RevokeHook = Callable[[str, str], Awaitable[None]]


class TrustError(Exception):
    """A request central will not act on: ``status`` is the HTTP answer (400, 404, 409)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class TrustRefused(Exception):
    """403 ``{"error": error, "reason": reason}``, already audited."""

    def __init__(self, error: str, reason: str) -> None:
        super().__init__(f"{error}: {reason}")
        self.error = error
        self.reason = reason


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    gateway_id: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class RevokeResult:
    gateway_id: str
    revoked_at: float
    broker: ReloadResult | None  # None: central does not manage broker files


def load_trust_ca(trust: TrustConfig) -> CertificateAuthority:
    passphrase = None
    if trust.ca_passphrase_file is not None:
        try:
            passphrase = trust.ca_passphrase_file.read_bytes().strip()
        except OSError as exc:
            raise PkiError(f"{trust.ca_passphrase_file}: cannot read: {exc.strerror}") from exc
    return load_ca_files(trust.ca_cert, trust.ca_key, passphrase=passphrase)


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


class TrustService:
    def __init__(
        self,
        config: CentralConfig,
        store: TrustStore,
        *,
        ca: CertificateAuthority | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if config.trust is None:
            raise TrustError(400, "central.yaml has no trust: section")
        self.config = config
        self.trust: TrustConfig = config.trust
        self.store = store
        self.ca = ca if ca is not None else load_trust_ca(self.trust)
        self._clock = clock
        self._central_signing_pem = public_key_pem(load_private_key(config.signing_key).public_key())
        self._central_e2e_pem = (
            None
            if config.e2e_key is None
            else x25519_public_pem(load_x25519_private(config.e2e_key).public_key())
        )
        # Awaited in order before access is cut (cloud_sync.central.app adds the gateway.revoked command).
        self.before_revoke: list[RevokeHook] = []
        self._files_lock = threading.Lock()

    def now(self) -> float:
        return self._clock()

    @property
    def encrypt(self) -> str:
        return E2E_SUITE if self.trust.e2e_default and self._central_e2e_pem is not None else "off"

    # -- tokens ------------------------------------------------------------------------------

    def issue_token(
        self,
        gateway_id: str,
        *,
        estate: str | None = None,
        name: str | None = None,
        expires_in_s: float | None = None,
        by: str,
        source: str = "",
    ) -> IssuedToken:
        try:
            validate_client_name(gateway_id)
        except PkiError as exc:
            raise TrustError(400, str(exc)) from exc
        if any(gw.id == gateway_id for gw in self.config.gateways):
            raise TrustError(409, f"{gateway_id} is enrolled by hand in central.yaml (gateways:)")
        limit = self.trust.token_max_hours * 3600.0
        lifetime = min(DEFAULT_TOKEN_S, limit) if expires_in_s is None else expires_in_s
        if not math.isfinite(lifetime) or not _MIN_TOKEN_S <= lifetime <= limit:
            raise TrustError(400, f"expires_in_s must be between {_MIN_TOKEN_S:.0f} and {limit:.0f}")
        now = self._clock()
        token = new_token()
        row = TokenRow(token_digest(token), gateway_id, estate, name, now, by, now + lifetime, None, None)
        self.store.add_token(
            row, audit=audit_row(now, "token.issued", gateway_id=gateway_id, actor=by, source=source)
        )
        _LOG.info("enrolment token issued", gateway=gateway_id, by=by, expires_at=row.expires_at)
        return IssuedToken(token, gateway_id, row.expires_at)

    # -- enrolment and renewal ---------------------------------------------------------------

    def _refuse(
        self, error: str, reason: str, *, gateway_id: str | None, source: str, detail: str = ""
    ) -> TrustRefused:
        event = "token.refused" if error == "token_refused" else "renew.refused"
        self.store.audit(
            audit_row(
                self._clock(),
                event,
                gateway_id=gateway_id,
                source=source,
                reason=reason,
                detail=detail or None,
            )
        )
        _LOG.warning("trust request refused", error=error, reason=reason, gateway=gateway_id, source=source)
        return TrustRefused(error, reason)

    def _issue(
        self, gateway_id: str, csr: str, signing_pem: str, e2e_pem: str, now: float
    ) -> tuple[Issued, str, str | None]:
        """Parse and sign: (what to record, the certificate PEM, the broker password if any)."""
        keys = parse_public_keys(signing_pem, e2e_pem)
        try:
            cert = sign_csr(
                self.ca, csr, common_name=gateway_id, now=_utc(now), valid_days=self.trust.certificate_days
            )
        except PkiError as exc:
            raise MalformedRequest(str(exc)) from exc
        password: str | None = None
        line: str | None = None
        access = self.trust.broker_access
        if access is not None and access.password_file is not None:
            password = new_password()
            line = password_line(gateway_id, password)
        issued = Issued(
            serial=cert.serial_number,
            not_after=cert.not_valid_after_utc.timestamp(),
            kid=key_id(keys.signing),
            signing_pem=keys.signing_pem,
            e2e_pem=keys.e2e_pem,
            password_line=line,
        )
        return issued, certificate_pem(cert), password

    def _grant(self, gw: GatewayRow, issued: Issued, cert_pem: str, password: str | None) -> dict[str, Any]:
        return {
            "gateway_id": gw.id,
            "estate": gw.estate,
            "name": gw.name,
            "client_cert": cert_pem,
            "ca_cert": certificate_pem(self.ca.cert),
            "broker": {
                "host": self.trust.broker_host,
                "port": self.trust.broker_port,
                "username": gw.id,
                "password": password,
            },
            "central_signing_key": self._central_signing_pem,
            "central_e2e_key": self._central_e2e_pem,
            "encrypt": gw.encrypt,
            "not_after": issued.not_after,
            "renew_after": issued.not_after - self.trust.renew_before_days * _DAY_S,
            "kid": issued.kid,
        }

    def enroll(self, *, token: str, csr: str, signing_key: str, e2e_key: str, source: str) -> dict[str, Any]:
        """The ``/enroll`` answer; raises ``MalformedRequest`` (400) or ``TrustRefused`` (403)."""
        now = self._clock()
        row = self.store.token(token_digest(token))
        if row is None:
            raise self._refuse("token_refused", "unknown", gateway_id=None, source=source)
        gw_id = row.gateway_id
        if row.used_at is not None:
            raise self._refuse("token_refused", "used", gateway_id=gw_id, source=source)
        if row.expires_at < now:
            raise self._refuse("token_refused", "expired", gateway_id=gw_id, source=source)
        existing = self.store.gateway(gw_id)
        if existing is not None and existing.revoked:
            raise self._refuse("token_refused", "revoked", gateway_id=gw_id, source=source)
        issued, cert_pem, password = self._issue(gw_id, csr, signing_key, e2e_key, now)
        spent = self.store.enrol(
            token_digest=row.digest,
            source=source,
            gateway_id=gw_id,
            estate=row.estate,
            name=row.name,
            encrypt=self.encrypt,
            issued=issued,
            now=now,
            grace_until=now + self.trust.old_key_grace_days * _DAY_S,
            audit=audit_row(
                now,
                "enrolled",
                gateway_id=gw_id,
                actor=row.created_by,
                source=source,
                detail=f"kid {issued.kid}",
            ),
        )
        if not spent:
            raise self._refuse("token_refused", "used", gateway_id=gw_id, source=source)
        gw = self.store.gateway(gw_id)
        assert gw is not None
        _LOG.info("gateway enrolled", gateway=gw_id, kid=issued.kid, source=source)
        self.sync_broker()
        return self._grant(gw, issued, cert_pem, password)

    def _valid_keys(self, gateway_id: str, now: float) -> dict[str, KeyRow]:
        keys = self.store.signing_keys(gateway_id)
        return {k.kid: k for k in keys if k.valid_until is None or k.valid_until >= now}

    def renew(
        self,
        *,
        gateway_id: str,
        kid: str,
        at: float,
        csr: str,
        signing_key: str,
        e2e_key: str,
        signature: str,
        source: str,
    ) -> dict[str, Any]:
        """The ``/enroll/renew`` answer, authenticated by the gateway's current key."""
        now = self._clock()
        gw = self.store.gateway(gateway_id)
        if gw is None:
            raise self._refuse("renew_refused", "unknown_gateway", gateway_id=gateway_id, source=source)
        if gw.revoked:
            raise self._refuse("renew_refused", "revoked", gateway_id=gateway_id, source=source)
        key = self._valid_keys(gateway_id, now).get(kid)
        message = renew_message(
            gateway_id=gateway_id, kid=kid, at=at, csr=csr, signing_key=signing_key, e2e_key=e2e_key
        )
        if key is None or not verify_renewal(
            parse_public_key(key.pem, origin=f"{gateway_id} key {kid}"), signature, message
        ):
            raise self._refuse(
                "renew_refused", "bad_signature", gateway_id=gateway_id, source=source, detail=f"kid {kid}"
            )
        if not math.isfinite(at) or abs(at - now) > RENEW_MAX_SKEW_S:
            raise self._refuse(
                "renew_refused", "stale", gateway_id=gateway_id, source=source, detail=f"at {at}"
            )
        issued, cert_pem, password = self._issue(gateway_id, csr, signing_key, e2e_key, now)
        recorded = self.store.renew(
            gateway_id=gateway_id,
            at=at,
            issued=issued,
            now=now,
            grace_until=now + self.trust.old_key_grace_days * _DAY_S,
            audit=audit_row(
                now, "renewed", gateway_id=gateway_id, source=source, detail=f"kid {kid} -> {issued.kid}"
            ),
        )
        if not recorded:
            # Revoked meanwhile, or the same signed request a second time.
            latest = self.store.gateway(gateway_id)
            reason = "revoked" if latest is not None and latest.revoked else "stale"
            raise self._refuse(
                "renew_refused", reason, gateway_id=gateway_id, source=source, detail="replayed or raced"
            )
        latest = self.store.gateway(gateway_id)
        assert latest is not None
        _LOG.info("gateway renewed", gateway=gateway_id, old_kid=kid, kid=issued.kid)
        self.sync_broker()
        return self._grant(latest, issued, cert_pem, password)

    # -- revocation --------------------------------------------------------------------------

    def check_revocable(self, gateway_id: str) -> GatewayRow:
        gw = self.store.gateway(gateway_id)
        if gw is None:
            raise TrustError(404, f"{gateway_id} was not enrolled with a token")
        if gw.revoked:
            raise TrustError(409, f"{gateway_id} is already revoked")
        return gw

    def revoke_now(self, gateway_id: str, *, reason: str, by: str, source: str = "") -> RevokeResult:
        """Mark revoked (ingest rejects its batches from the next watcher poll), then rewrite the
        broker files and reload: ACL block and password line gone, certificates in the CRL."""
        self.check_revocable(gateway_id)
        now = self._clock()
        done = self.store.revoke(
            gateway_id,
            at=now,
            by=by,
            reason=reason,
            audit=audit_row(now, "revoked", gateway_id=gateway_id, actor=by, source=source, reason=reason),
        )
        if not done:
            raise TrustError(409, f"{gateway_id} is already revoked")
        _LOG.warning("gateway revoked", gateway=gateway_id, by=by, reason=reason)
        return RevokeResult(gateway_id, now, self.sync_broker())

    async def revoke(
        self,
        gateway_id: str,
        *,
        reason: str,
        by: str,
        source: str = "",
        before_cut: RevokeHook | None = None,
    ) -> RevokeResult:
        """Run ``before_revoke`` hooks (and ``before_cut``) while the gateway still has access,
        then :meth:`revoke_now`. A hook that fails or hangs is logged; it never stops a revocation."""
        await asyncio.to_thread(self.check_revocable, gateway_id)
        hooks = [*self.before_revoke, *([before_cut] if before_cut is not None else [])]
        for hook in hooks:
            try:
                await asyncio.wait_for(hook(gateway_id, reason), _HOOK_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - a notification must not block the cut
                _LOG.error("revocation hook failed", gateway=gateway_id, error=repr(exc))
        return await asyncio.to_thread(self.revoke_now, gateway_id, reason=reason, by=by, source=source)

    # -- broker files ------------------------------------------------------------------------

    def access_files(self) -> AccessFiles:
        gateways = self.store.gateways()
        allowed = [gw.id for gw in gateways if not gw.revoked]
        revoked = {gw.id for gw in gateways if gw.revoked}
        # Gateways enrolled by hand (central.yaml gateways:) keep their access: the ACL has no
        # %u pattern any more, so they need blocks of their own too.
        allowed += [gw.id for gw in self.config.gateways if gw.id not in revoked]
        access = self.trust.broker_access
        passwords: str | None = None
        if access is not None and access.password_file is not None:
            try:
                existing = access.password_file.read_text(encoding="utf-8")
            except FileNotFoundError:
                existing = ""
            lines = {gw.id: gw.password_line for gw in gateways if not gw.revoked and gw.password_line}
            passwords = render_passwords(existing, managed=[gw.id for gw in gateways], lines=lines)
        crl = build_crl(
            self.ca,
            [(serial, _utc(at)) for serial, at in self.store.revoked_serials()],
            now=_utc(self._clock()),
        )
        return AccessFiles(acl=render_acl(allowed), passwords=passwords, crl=crl)

    def sync_broker(self) -> ReloadResult | None:
        """Rewrite the broker files from the store and reload; None without ``broker_access``."""
        access = self.trust.broker_access
        if access is None:
            return None
        with self._files_lock:
            try:
                write_access_files(access, self.access_files())
            except OSError as exc:
                # The store is right already; the next change or central's daily pass retries.
                _LOG.error("broker access files not written", error=str(exc))
                return ReloadResult(False, f"broker files not written: {exc}")
            result = reload_broker(access)
        _LOG.info("broker access files written", reloaded=result.reloaded, detail=result.detail)
        return result
