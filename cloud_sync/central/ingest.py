"""Verify → store → ack decision for one incoming batch; the same path for MQTT and HTTPS POST.

No network here: the MQTT client and the REST API hand payloads in and publish or return the
``AckMessage`` that comes out. Order matters for safety: the cheap header is parsed first, the
key looked up and the signature checked, and only a verified batch is decompressed and stored.

Audit rows (rejections, duplicates) are not written one transaction each: they wait in a bounded
buffer and go to the database with the next group's commit, or on :meth:`Ingestor.flush_audit`
(MQTT calls it per group before its PUBACKs, the service every second, the audit route before it
reads). A flood of garbage thus costs one fsync per group; beyond ``MAX_PENDING_AUDIT`` waiting
rows, further rejections are counted (``audit_dropped``) but not itemised.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud_sync.ack import AckMessage
from cloud_sync.central.config import EnrolledGateway
from cloud_sync.central.storage.interface import CentralStorage
from cloud_sync.central.store import BatchMeta, Rejection
from cloud_sync.envelope import (
    decode_header,
    decode_records,
    decode_telemetry_columns,
    valid_gateway_id,
    verify_envelope,
)
from cloud_sync.errors import CentralStoreError, EnvelopeError
from cloud_sync.keys import key_id, load_public_key, parse_public_key
from cloud_sync.ports import EventRow, Lane, TelemetryRow

__all__ = [
    "MAX_PENDING_AUDIT",
    "IngestOutcome",
    "Ingestor",
    "KeyRegistry",
    "Prepared",
    "TrustedGateway",
    "parse_uplink_topic",
]

_LOG = structlog.get_logger(__name__)

MAX_PENDING_AUDIT: Final = 10_000
# A buffer this full, or this old, is written at the next commit even with nothing to store.
_AUDIT_FLUSH_ROWS: Final = 256
_AUDIT_FLUSH_S: Final = 1.0

Status = Literal["stored", "duplicate", "rejected"]


@dataclass(frozen=True, slots=True)
class TrustedGateway:
    """A gateway enrolled with a token (cloud_sync.central.trust), as ingest sees it."""

    estate: str | None
    name: str | None
    revoked: bool
    # kid → (key, valid until); None: the current key, a time: a retired key still accepted.
    keys: Mapping[str, tuple[Ed25519PublicKey, float | None]]


class KeyRegistry:
    """Enrolled gateways and their public keys, by key id.

    Two layers: central.yaml's ``gateways:`` (fixed for the life of the process) and the trust
    store's gateways, replaced as a whole by :meth:`replace_trusted` whenever ``trust.db``
    changes. Readers in the ingest threads see the old mapping or the new one, never half.
    """

    def __init__(
        self,
        keys: dict[str, dict[str, Ed25519PublicKey]] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys: dict[str, dict[str, Ed25519PublicKey]] = {gw: dict(ks) for gw, ks in (keys or {}).items()}
        self._trusted: Mapping[str, TrustedGateway] = {}
        self._clock = clock

    @classmethod
    def from_config(cls, gateways: Iterable[EnrolledGateway]) -> KeyRegistry:
        registry = cls()
        for gw in gateways:
            for key in gw.keys:
                if key.file is not None:
                    registry.enroll(gw.id, load_public_key(key.file))
                else:
                    assert key.pem is not None
                    registry.enroll(gw.id, parse_public_key(key.pem, origin=f"gateway {gw.id}"))
        return registry

    def enroll(self, gateway_id: str, public_key: Ed25519PublicKey) -> str:
        kid = key_id(public_key)
        self._keys.setdefault(gateway_id, {})[kid] = public_key
        return kid

    def replace_trusted(self, gateways: Mapping[str, TrustedGateway]) -> None:
        self._trusted = dict(gateways)

    def lookup(self, gateway_id: str, kid: str) -> Ed25519PublicKey | None:
        key = self._keys.get(gateway_id, {}).get(kid)
        if key is not None:
            return key
        trusted = self._trusted.get(gateway_id)
        found = trusted.keys.get(kid) if trusted is not None else None
        if found is None:
            return None
        public_key, valid_until = found
        if valid_until is not None and self._clock() > valid_until:
            return None
        return public_key

    def knows(self, gateway_id: str) -> bool:
        return gateway_id in self._keys or gateway_id in self._trusted

    def revoked(self, gateway_id: str) -> bool:
        trusted = self._trusted.get(gateway_id)
        return trusted is not None and trusted.revoked

    def estate_of(self, gateway_id: str) -> str | None:
        trusted = self._trusted.get(gateway_id)
        return trusted.estate if trusted is not None else None

    def name_of(self, gateway_id: str) -> str | None:
        trusted = self._trusted.get(gateway_id)
        return trusted.name if trusted is not None else None

    @property
    def gateway_ids(self) -> list[str]:
        return sorted(set(self._keys) | set(self._trusted))


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    status: Status
    gateway_id: str
    lane: str
    seq: int | None
    ack: AckMessage | None  # None when rejected: nothing is acknowledged for a rejected batch
    reason: str = ""
    detail: str = ""
    records: int = 0


@dataclass(frozen=True, slots=True)
class _Verified:
    meta: BatchMeta
    records: Sequence[TelemetryRow] | list[EventRow]
    size: int


Prepared = _Verified | IngestOutcome


def parse_uplink_topic(topic: str) -> tuple[str, str] | None:
    """``gh/v1/{gw}/up/{rest}`` → (gw, rest); None for topics outside any gateway's ``up/``.

    ``rest`` is whatever follows ``up/`` (``""`` for ``gh/v1/{gw}/up`` itself, which ``up/#``
    also matches); anything but ``event`` or ``telemetry`` is then rejected as ``bad_route``.
    """
    parts = topic.split("/", 4)
    if len(parts) >= 4 and parts[0] == "gh" and parts[1] == "v1" and parts[3] == "up":
        return parts[2], parts[4] if len(parts) == 5 else ""
    return None


class Ingestor:
    def __init__(
        self,
        store: CentralStorage,
        registry: KeyRegistry,
        *,
        clock: Callable[[], float],
        e2e_keys: Mapping[str, X25519PrivateKey] | None = None,
    ) -> None:
        self._store = store
        self._registry = registry
        # Central's X25519 keys by key id (CentralConfig.e2e_key): encrypted batches open with them.
        # Without the key a batch names it is rejected as ``undecryptable`` and never acked, so
        # the gateway keeps it until central has the key.
        self._e2e_keys = dict(e2e_keys or {})
        # PostgreSQL copies telemetry straight from the decoded columns (TelemetryColumns);
        # SQLite walks the rows several times, so it gets them built once.
        self._columnar = store.backend == "postgresql"
        self._clock = clock
        self.counters: dict[str, int] = {
            "stored": 0,
            "duplicate": 0,
            "rejected": 0,
            "records": 0,
            "audit_dropped": 0,
        }
        # MQTT ingest runs the event and telemetry pipelines in two threads.
        self._counter_lock = threading.Lock()
        self._audit: list[Rejection] = []
        self._audit_since = 0.0  # monotonic time of the oldest waiting row
        self._audit_lock = threading.Lock()

    def _count(self, name: str, amount: int = 1) -> None:
        with self._counter_lock:
            self.counters[name] += amount

    # -- audit buffer ------------------------------------------------------------------------------

    def _audit_later(self, row: Rejection) -> None:
        with self._audit_lock:
            if len(self._audit) >= MAX_PENDING_AUDIT:
                dropped = True
            else:
                dropped = False
                if not self._audit:
                    self._audit_since = time.monotonic()
                self._audit.append(row)
        if dropped:
            self._count("audit_dropped")

    def _take_audit(self) -> list[Rejection]:
        with self._audit_lock:
            rows, self._audit = self._audit, []
        return rows

    def _requeue_audit(self, rows: list[Rejection]) -> None:
        with self._audit_lock:
            room = MAX_PENDING_AUDIT - len(self._audit)
            self._audit[:0] = rows[:room]
            lost = max(0, len(rows) - room)
        if lost:
            self._count("audit_dropped", lost)

    def _audit_due(self) -> bool:
        with self._audit_lock:
            waiting = len(self._audit)
            since = self._audit_since
        return waiting >= _AUDIT_FLUSH_ROWS or (waiting > 0 and time.monotonic() - since >= _AUDIT_FLUSH_S)

    @property
    def audit_pending(self) -> int:
        with self._audit_lock:
            return len(self._audit)

    def flush_audit(self) -> int:
        """Write every waiting audit row in one transaction; returns how many."""
        rows = self._take_audit()
        if rows:
            try:
                self._store.record_rejections(rows)
            except BaseException:
                self._requeue_audit(rows)
                raise
        return len(rows)

    # -- acks and ingest -----------------------------------------------------------------------

    def ack_for(self, gateway_id: str, lane: Lane) -> AckMessage:
        acked, missing = self._store.ack_position(gateway_id, lane)
        return AckMessage(lane=lane, acked=acked, missing=missing, ts=self._clock())

    def ingest(self, payload: bytes, *, gateway_id: str, lane: str, transport: str) -> IngestOutcome:
        """Handle one batch that arrived for ``gateway_id``/``lane`` (from the topic or URL)."""
        return self.ingest_many([(payload, gateway_id, lane)], transport=transport)[0]

    def ingest_many(self, items: Sequence[tuple[bytes, str, str]], *, transport: str) -> list[IngestOutcome]:
        """Handle several ``(payload, gateway_id, lane)`` arrivals; verified ones commit together."""
        return self.commit(self.verify_many(items, transport=transport), transport=transport)

    def verify_many(self, items: Sequence[tuple[bytes, str, str]], *, transport: str) -> list[Prepared]:
        """First stage: check, verify and decode (rejections are audited here); stores nothing else
        (a store with ``prepare_batches``, PostgreSQL, encodes the group here for its commit,
        which may make partitions and point ids but never batch rows).

        Separate from :meth:`commit` so that a pipeline can decode one group while the
        database commits the previous one.
        """
        now = self._clock()
        prepared = [self._verify(payload, gw, lane, transport, now) for payload, gw, lane in items]
        prepare = getattr(self._store, "prepare_batches", None)
        if self._columnar and prepare is not None:
            try:
                # The store's encoding of this group, here while the previous group commits.
                prepare([(p.meta, p.records) for p in prepared if isinstance(p, _Verified)])
            except CentralStoreError as exc:
                # Not fatal here: the commit does the same work again and reports what fails.
                _LOG.info("group not prepared ahead", error=str(exc))
        return prepared

    def commit(self, prepared: Sequence[Prepared], *, transport: str) -> list[IngestOutcome]:
        """Second stage: store the verified batches of a group in one transaction, make acks."""
        now = self._clock()
        verified = [p for p in prepared if isinstance(p, _Verified)]
        stored: list[Any] = []
        if verified:
            audit = self._take_audit()
            try:
                stored = self._store.store_batches(
                    [(v.meta, v.records) for v in verified], transport=transport, received_at=now, audit=audit
                )
            except BaseException:
                self._requeue_audit(audit)
                raise
        elif self._audit_due():
            self.flush_audit()
        results = iter(stored)
        outcomes: list[IngestOutcome] = []
        # One ack per gateway and lane: after the commit it is the same for all of its batches.
        acks: dict[tuple[str, Lane], AckMessage] = {}
        for p in prepared:
            if isinstance(p, IngestOutcome):
                outcomes.append(p)
                continue
            result = next(results)
            meta, count = p.meta, len(p.records)
            ack = acks.get((meta.gateway_id, meta.lane))
            if ack is None:
                ack = acks[(meta.gateway_id, meta.lane)] = self.ack_for(meta.gateway_id, meta.lane)
            if result.stored:
                self._count("stored")
                self._count("records", count)
                outcomes.append(
                    IngestOutcome("stored", meta.gateway_id, str(meta.lane), meta.seq, ack, records=count)
                )
                continue
            self._count("duplicate")
            # A duplicate is a normal resend (our ack was lost) or a replay; both are acknowledged
            # and neither stores anything. Different bytes under a stored key deserve attention.
            reason = "duplicate" if result.same_bytes else "conflict"
            detail = "already stored" if result.same_bytes else "different bytes under a stored sequence"
            # Audited with the next commit (a resend storm must not cost an fsync per duplicate).
            self._audit_later(
                Rejection(
                    now,
                    transport,
                    meta.gateway_id,
                    str(meta.lane),
                    meta.seq,
                    reason,
                    detail,
                    p.size,
                    meta.digest,
                )
            )
            if not result.same_bytes:
                _LOG.warning(
                    "conflicting batch under a stored sequence", gateway=meta.gateway_id, seq=meta.seq
                )
            outcomes.append(
                IngestOutcome("duplicate", meta.gateway_id, str(meta.lane), meta.seq, ack, reason, detail)
            )
        return outcomes

    def _verify(
        self, payload: bytes, gateway_id: str, lane: str, transport: str, now: float
    ) -> _Verified | IngestOutcome:
        digest = hashlib.sha256(payload).digest()
        seq: int | None = None

        def reject(reason: str, detail: str) -> IngestOutcome:
            self._count("rejected")
            self._audit_later(
                Rejection(now, transport, gateway_id, lane, seq, reason, detail, len(payload), digest)
            )
            _LOG.warning(
                "batch rejected", gateway=gateway_id, lane=lane, seq=seq, reason=reason, detail=detail
            )
            return IngestOutcome("rejected", gateway_id, lane, seq, None, reason, detail)

        if not valid_gateway_id(gateway_id) or lane not in (Lane.EVENT.value, Lane.TELEMETRY.value):
            return reject("bad_route", "gateway id or lane in the topic/URL is invalid")
        if not self._registry.knows(gateway_id):
            return reject("unknown_gateway", "gateway is not enrolled")
        if self._registry.revoked(gateway_id):
            return reject("revoked", "gateway was revoked; nothing it sends is stored")
        try:
            header = decode_header(payload)
        except EnvelopeError as exc:
            return reject(exc.reason, str(exc))
        seq = header.seq
        if header.gateway_id != gateway_id:
            return reject("gateway_mismatch", f"envelope says {header.gateway_id!r}")
        if header.lane.value != lane:
            return reject("lane_mismatch", f"envelope says {header.lane.value!r}")
        public_key = self._registry.lookup(gateway_id, header.key_id)
        if public_key is None:
            return reject("unknown_key", f"key id {header.key_id} is not enrolled for this gateway")
        try:
            verify_envelope(header, public_key)
            records: Sequence[TelemetryRow] | list[EventRow]
            if self._columnar and header.lane is Lane.TELEMETRY:
                records = decode_telemetry_columns(header, e2e_keys=self._e2e_keys)
            else:
                records = decode_records(header, e2e_keys=self._e2e_keys)
        except EnvelopeError as exc:  # SignatureError is one
            return reject(exc.reason, str(exc))
        meta = BatchMeta(
            gateway_id=gateway_id,
            lane=header.lane,
            seq=header.seq,
            key_id=header.key_id,
            sealed_at=header.sealed_at,
            historical=header.historical,
            digest=digest,
        )
        return _Verified(meta, records, len(payload))

    def note_state(self, gateway_id: str, payload: bytes) -> list[AckMessage]:
        """A state message; returns the acks to publish (both lanes when the gateway came online)."""
        if not self._registry.knows(gateway_id):
            _LOG.warning("state from a gateway that is not enrolled", gateway=gateway_id)
            return []
        try:
            state: Any = json.loads(payload.decode("utf-8")) if payload else {"state": "offline"}
        except (UnicodeDecodeError, json.JSONDecodeError):
            _LOG.warning("state message is not JSON", gateway=gateway_id)
            return []
        if not isinstance(state, dict):
            _LOG.warning("state message is not a JSON object", gateway=gateway_id)
            return []
        self._store.note_state(gateway_id, state, self._clock())
        if state.get("state") != "online":
            return []
        return [self.ack_for(gateway_id, lane) for lane in Lane]
