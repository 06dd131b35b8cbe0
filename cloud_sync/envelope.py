"""The signed batch envelope: seal (encode + sign), decode, verify. Pure: no I/O, no clock.

The byte layout is specified in ``docs/protocol.md``; this module is one implementation of it.
In short::

    envelope     = msgpack array [ "GH1", signed_bytes (bin), signature (bin, 64 bytes) ]
    signed_bytes = msgpack map {v, gw, lane, seq, sealed_at, n, kid, hist, codec, [enc,] records}
    records      = one zstd frame holding a msgpack map of columns,
                   or, with ``enc``, that frame encrypted to central (cloud_sync.e2e, §2.7)

The signature is Ed25519 over ``signed_bytes`` exactly as carried, so a verifier never has to
re-encode anything. Sealing is deterministic (same rows, same arguments → same bytes), but a
resend never re-seals: the outbox stores the bytes once and sends them as they are.

A receiver should call :func:`decode_header` (cheap, bounded), look up the key, verify, and only
then :func:`decode_records`, so that unauthenticated input is never decrypted or decompressed.
Encryption comes before signing: the signature covers the ciphertext, so a receiver rejects a
forgery without spending a key agreement on it, and anyone can check a batch without the key.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, overload

import msgpack
import zstandard
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from cloud_sync.ack import AckMessage, decode_ack, encode_ack
from cloud_sync.e2e import SUITE_AES, SUITES, batch_context, decrypt, encrypt
from cloud_sync.errors import EnvelopeError, SignatureError
from cloud_sync.ports import EventRow, Lane, Sealer, TelemetryRow
from cloud_sync.wire import Limits, bounded_unpackb, scalar_map, split_signed

__all__ = [
    "CODEC_ZSTD",
    "CONTAINERS_PER_RECORD",
    "MAGIC",
    "MAX_EVENT_MAP_ENTRIES",
    "MAX_PAYLOAD_BYTES",
    "MAX_RECORDS",
    "MAX_RECORDS_BYTES",
    "VERSION",
    "AckMessage",
    "Envelope",
    "EnvelopeHeader",
    "TelemetryColumns",
    "decode_ack",
    "decode_envelope",
    "decode_header",
    "decode_records",
    "decode_telemetry_columns",
    "encode_ack",
    "from_us",
    "make_sealer",
    "to_us",
    "valid_gateway_id",
    "verify_envelope",
]

MAGIC: Final = "GH1"
VERSION: Final = 1
CODEC_ZSTD: Final = "zstd"
MAX_PAYLOAD_BYTES: Final = 8 * 1024 * 1024
MAX_RECORDS: Final = 100_000
# Decompressed size of the records; a zstd frame may declare no more than this.
MAX_RECORDS_BYTES: Final = 64 * 1024 * 1024
SIGNATURE_BYTES: Final = 64
ZSTD_LEVEL: Final = 3

_HEADER_KEYS: Final = ("v", "gw", "lane", "seq", "sealed_at", "n", "kid", "hist", "codec", "records")
# An encrypted batch's header: ``enc`` (the suite) right before the records it describes.
_ENC_HEADER_KEYS: Final = (*_HEADER_KEYS[:-1], "enc", "records")
_TELEMETRY_KEYS: Final = ("pid", "p", "v", "q", "r", "t", "s")
_EVENT_KEYS: Final = ("k", "src", "t", "d")
_GATEWAY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_MAX_UINT64: Final = 2**64 - 1
# Entries of one map inside event data (docs/protocol.md §2.5).
MAX_EVENT_MAP_ENTRIES: Final = 4096
# Maps and arrays the records may hold in all: the columns, plus event data (docs/protocol.md §2.5).
CONTAINERS_PER_RECORD: Final = 16
_CONTAINERS_BASE: Final = 64
# Even after the signature has verified, no column may be longer than n allows and no map
# larger than event data allows, so a gateway's bug cannot make central build millions of
# objects out of a few MiB (an empty map is one byte on the wire, 64 in memory).
_RECORD_LIMITS: Final = Limits(array=MAX_RECORDS, map=MAX_EVENT_MAP_ENTRIES, str=MAX_RECORDS_BYTES, bin=0)


def valid_gateway_id(gateway_id: str) -> bool:
    """Gateway ids become MQTT topic levels and usernames: no ``/``, ``+``, ``#`` or spaces."""
    return _GATEWAY_ID.fullmatch(gateway_id) is not None


def to_us(ts: float) -> int:
    """Seconds → integer microseconds, as timestamps travel in the records."""
    return round(ts * 1_000_000)


def from_us(us: int) -> float:
    return us / 1_000_000


@dataclass(frozen=True, slots=True)
class EnvelopeHeader:
    """Everything of an envelope except the decoded records; cheap to obtain, not yet trusted."""

    version: int
    gateway_id: str
    lane: Lane
    seq: int
    sealed_at: float
    record_count: int
    key_id: str
    historical: bool
    codec: str
    records_blob: bytes
    signed_bytes: bytes
    signature: bytes
    # The suite (cloud_sync.e2e.SUITES) when records_blob is encrypted to central, else None.
    encryption: str | None = None


@dataclass(frozen=True, slots=True)
class Envelope:
    version: int
    gateway_id: str
    lane: Lane
    seq: int
    sealed_at: float
    record_count: int
    key_id: str
    historical: bool
    records: list[TelemetryRow] | list[EventRow]
    signed_bytes: bytes
    signature: bytes
    encryption: str | None = None


# --- sealing -------------------------------------------------------------------------------


def _canonical(obj: Any) -> Any:
    """Sort map keys recursively so that equal event data always packs to equal bytes."""
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise EnvelopeError("event data maps must have str keys", reason="bad_rows")
        return {k: _canonical(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list | tuple):
        return [_canonical(v) for v in obj]
    return obj


def _delta(values_us: list[int]) -> list[int]:
    if not values_us:
        return []
    return [values_us[0], *(b - a for a, b in zip(values_us, values_us[1:], strict=False))]


def _undelta(deltas: list[int]) -> list[int]:
    return list(itertools.accumulate(deltas))


# TelemetryRow is a named tuple; tuple.__new__ builds one from a tuple without a Python frame.
_NEW_TELEMETRY_ROW: Final = functools.partial(tuple.__new__, TelemetryRow)


class TelemetryColumns(Sequence[TelemetryRow]):
    """Telemetry rows held column by column, as a store reads them: the sealer packs these lists
    as they are instead of building one ``TelemetryRow`` per record and taking it apart again
    (a third of the gateway's sealing time). ``names`` are the distinct point ids, ``p`` each
    record's index into them. Indexing still yields ``TelemetryRow``s for any other consumer.
    The bytes sealed are exactly those of the same rows as ``TelemetryRow``s."""

    __slots__ = ("names", "p", "q", "r", "receipt", "source", "v")

    def __init__(
        self,
        names: list[str],
        p: list[int],
        v: list[Any],
        q: list[int],
        r: list[str],
        receipt: list[float],
        source: list[float | None],
    ) -> None:
        if not len(p) == len(v) == len(q) == len(r) == len(receipt) == len(source):
            raise ValueError("telemetry columns differ in length")
        self.names, self.p, self.v, self.q, self.r = names, p, v, q, r
        self.receipt, self.source = receipt, source

    def __len__(self) -> int:
        return len(self.p)

    @overload
    def __getitem__(self, i: int) -> TelemetryRow: ...
    @overload
    def __getitem__(self, i: slice) -> list[TelemetryRow]: ...
    def __getitem__(self, i: int | slice) -> TelemetryRow | list[TelemetryRow]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return TelemetryRow(
            self.names[self.p[i]], self.v[i], self.q[i], self.r[i], self.receipt[i], self.source[i]
        )

    def __iter__(self) -> Iterator[TelemetryRow]:
        # One C-level tuple per record; Sequence's default would call __getitem__ per index.
        points = map(self.names.__getitem__, self.p)
        return map(
            _NEW_TELEMETRY_ROW, zip(points, self.v, self.q, self.r, self.receipt, self.source, strict=True)
        )

    def columns(self) -> dict[str, Any]:
        t_us = [round(ts * 1_000_000) for ts in self.receipt]
        s: list[int | None]
        if any(x is not None for x in self.source):
            s = [
                None if x is None else round(x * 1_000_000) - t
                for x, t in zip(self.source, t_us, strict=True)
            ]
        else:
            s = [None] * len(t_us)
        return {
            "pid": self.names,
            "p": self.p,
            "v": self.v,
            "q": self.q,
            "r": self.r,
            "t": _delta(t_us),
            "s": s,
        }


def _telemetry_columns(rows: Sequence[TelemetryRow]) -> dict[str, Any]:
    if isinstance(rows, TelemetryColumns):
        return rows.columns()
    index: dict[str, int] = {}
    p: list[int] = []
    t_us: list[int] = []
    s: list[int | None] = []
    for row in rows:
        if not isinstance(row, TelemetryRow):
            raise EnvelopeError("a telemetry batch holds TelemetryRow records only", reason="bad_rows")
        p.append(index.setdefault(row.point_id, len(index)))
        r_us = to_us(row.receipt_ts)
        t_us.append(r_us)
        s.append(None if row.source_ts is None else to_us(row.source_ts) - r_us)
    return {
        "pid": list(index),
        "p": p,
        "v": [row.value for row in rows],
        "q": [int(row.quality) for row in rows],
        "r": [str(row.reason) for row in rows],
        "t": _delta(t_us),
        "s": s,
    }


def _event_columns(rows: Sequence[EventRow]) -> dict[str, Any]:
    for row in rows:
        if not isinstance(row, EventRow):
            raise EnvelopeError("an event batch holds EventRow records only", reason="bad_rows")
    return {
        "k": [row.kind for row in rows],
        "src": [row.source for row in rows],
        "t": _delta([to_us(row.ts) for row in rows]),
        "d": [_canonical(row.data) for row in rows],
    }


def _pack(obj: Any) -> bytes:
    try:
        packed: bytes = msgpack.packb(obj, use_bin_type=True, strict_types=False)
    except (TypeError, ValueError, OverflowError) as exc:
        raise EnvelopeError(f"records cannot be packed: {exc}", reason="bad_rows") from exc
    return packed


def make_sealer(
    gateway_id: str,
    key_id: str,
    private_key: Ed25519PrivateKey,
    *,
    encrypt_to: X25519PublicKey | None = None,
    suite: str = SUITE_AES,
) -> Sealer:
    """A :class:`~cloud_sync.ports.Sealer` that signs with ``private_key`` as ``gateway_id``.

    With ``encrypt_to`` (central's X25519 public key) the compressed records are encrypted to it
    with ``suite`` and the header says so (``enc``); without it the bytes are exactly those of an
    unencrypted version 1 batch.
    """
    if not valid_gateway_id(gateway_id):
        raise ValueError(f"invalid gateway id {gateway_id!r}")
    if _KEY_ID.fullmatch(key_id) is None:
        raise ValueError(f"invalid key id {key_id!r}: 16 lower-case hex characters expected")
    if encrypt_to is not None and suite not in SUITES:
        raise ValueError(f"unknown encryption suite {suite!r}: one of {', '.join(SUITES)}")
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True, write_checksum=False)

    def seal(
        *,
        lane: Lane,
        seq: int,
        rows: Sequence[TelemetryRow] | Sequence[EventRow],
        historical: bool,
        sealed_at: float,
    ) -> bytes:
        lane = Lane(lane)
        if not 1 <= seq <= _MAX_UINT64:
            raise ValueError(f"sequence numbers start at 1, got {seq}")
        if len(rows) > MAX_RECORDS:
            raise EnvelopeError(f"{len(rows)} records exceed {MAX_RECORDS}", reason="too_many_records")
        columns = (
            _telemetry_columns(rows)  # type: ignore[arg-type]
            if lane is Lane.TELEMETRY
            else _event_columns(rows)  # type: ignore[arg-type]
        )
        raw = _pack(columns)
        if len(raw) > MAX_RECORDS_BYTES:
            raise EnvelopeError("records exceed the decompressed size limit", reason="too_large")
        blob = compressor.compress(raw)
        header: dict[str, Any] = {
            "v": VERSION,
            "gw": gateway_id,
            "lane": str(lane),
            "seq": seq,
            "sealed_at": float(sealed_at),
            "n": len(rows),
            "kid": key_id,
            "hist": bool(historical),
            "codec": CODEC_ZSTD,
        }
        if encrypt_to is not None:
            # Compress first: ciphertext does not compress.
            header["enc"] = suite
            blob = encrypt(
                blob, recipient=encrypt_to, suite=suite, context=batch_context(gateway_id, lane.value, seq)
            )
        header["records"] = blob
        signed_bytes = _pack(header)
        payload = _pack([MAGIC, signed_bytes, private_key.sign(signed_bytes)])
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise EnvelopeError("sealed batch exceeds the payload limit; seal fewer rows", reason="too_large")
        return payload

    return seal


# --- decoding -------------------------------------------------------------------------------


def _want(cond: bool, message: str) -> None:
    if not cond:
        raise EnvelopeError(message, reason="malformed")


def _is_uint(value: Any) -> bool:
    return type(value) is int and 0 <= value <= _MAX_UINT64


def _map_size(data: bytes) -> int | None:
    """Entries of the msgpack map ``data`` starts with (any of the three map forms), else None."""
    if not data:
        return None
    tag = data[0]
    if 0x80 <= tag <= 0x8F:
        return tag & 0x0F
    width = {0xDE: 2, 0xDF: 4}.get(tag)
    if width is None or len(data) < 1 + width:
        return None
    return int.from_bytes(data[1 : 1 + width], "big")


def decode_header(payload: bytes) -> EnvelopeHeader:
    """Parse the outer array and the signed header; the records stay compressed (and encrypted).

    Both layers are read without building containers (``cloud_sync.wire``): this runs on
    unauthenticated bytes, so a payload of nested maps costs nothing beyond its own size.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise EnvelopeError(f"payload of {len(payload)} bytes exceeds the limit", reason="too_large")
    signed_bytes, signature = split_signed(payload, MAGIC)
    # Eleven entries can only be an encrypted batch's header; anything else is read as the plain
    # layout and refused by scalar_map if it is not that either.
    keys = _ENC_HEADER_KEYS if _map_size(signed_bytes) == len(_ENC_HEADER_KEYS) else _HEADER_KEYS
    header = scalar_map(signed_bytes, keys, "signed part")
    version = header["v"]
    if version != VERSION or type(version) is not int:
        raise EnvelopeError(f"unsupported envelope version {version!r}", reason="unsupported_version")
    gw, lane, seq, sealed_at = header["gw"], header["lane"], header["seq"], header["sealed_at"]
    n, kid, hist, codec, blob = header["n"], header["kid"], header["hist"], header["codec"], header["records"]
    _want(isinstance(gw, str) and valid_gateway_id(gw), "gw is not a valid gateway id")
    _want(lane in (Lane.EVENT.value, Lane.TELEMETRY.value), f"unknown lane {lane!r}")
    _want(_is_uint(seq) and seq >= 1, "seq is not an unsigned integer ≥ 1")
    _want(type(sealed_at) is float, "sealed_at is not a float")
    _want(_is_uint(n) and n <= MAX_RECORDS, "n is not a record count within the limit")
    _want(isinstance(kid, str) and _KEY_ID.fullmatch(kid) is not None, "kid is not 16 hex characters")
    _want(type(hist) is bool, "hist is not a boolean")
    _want(codec == CODEC_ZSTD, f"unknown codec {codec!r}")
    _want(isinstance(blob, bytes), "records is not bin")
    enc = header.get("enc")
    _want(enc is None or enc in SUITES, f"unknown encryption suite {str(enc)[:40]!r}")
    return EnvelopeHeader(
        version=version,
        gateway_id=gw,
        lane=Lane(lane),
        seq=seq,
        sealed_at=sealed_at,
        record_count=n,
        key_id=kid,
        historical=hist,
        codec=codec,
        records_blob=blob,
        signed_bytes=signed_bytes,
        signature=signature,
        encryption=enc,
    )


def verify_envelope(env: Envelope | EnvelopeHeader, public_key: Ed25519PublicKey) -> None:
    """Raise :class:`SignatureError` unless ``signature`` is ``public_key``'s over ``signed_bytes``."""
    try:
        public_key.verify(env.signature, env.signed_bytes)
    except InvalidSignature as exc:
        raise SignatureError(f"signature of {env.gateway_id}/{env.lane}/{env.seq} does not verify") from exc


def _decompress(blob: bytes) -> bytes:
    try:
        declared = zstandard.get_frame_parameters(blob).content_size
    except zstandard.ZstdError as exc:
        raise EnvelopeError(f"records are not a zstd frame: {exc}", reason="malformed") from exc
    if declared == zstandard.CONTENTSIZE_UNKNOWN:
        raise EnvelopeError("records frame does not declare its content size", reason="malformed")
    if declared > MAX_RECORDS_BYTES:
        raise EnvelopeError(f"records declare {declared} bytes, over the limit", reason="too_large")
    dobj = zstandard.ZstdDecompressor().decompressobj()
    try:
        raw = dobj.decompress(blob)
    except zstandard.ZstdError as exc:
        raise EnvelopeError(f"records do not decompress: {exc}", reason="malformed") from exc
    _want(dobj.eof and not dobj.unused_data, "records are not exactly one complete zstd frame")
    _want(len(raw) == declared, "records frame content size does not match its header")
    return raw


def _columns(raw: bytes, keys: tuple[str, ...], n: int) -> dict[str, Any]:
    columns: dict[str, Any] = bounded_unpackb(
        raw, _RECORD_LIMITS, "records", max_containers=CONTAINERS_PER_RECORD * n + _CONTAINERS_BASE
    )
    _want(isinstance(columns, dict) and tuple(columns) == keys, f"records keys must be {list(keys)}")
    for key in keys:
        col = columns[key]
        _want(isinstance(col, list), f"column {key} is not an array")
        _want(key == "pid" or len(col) == n, f"column {key} has {len(col)} entries, n is {n}")
    _want(_types(columns["t"]) <= _INT, "column t holds non-integers")
    return columns


_INT: Final = frozenset({int})
_STR: Final = frozenset({str})
_INT_OR_NIL: Final = frozenset({int, type(None)})
_VALUE_TYPES: Final = frozenset({type(None), bool, int, float, str})


def _types(column: list[Any]) -> set[type]:
    return set(map(type, column))


def _plain(obj: Any, depth: int = 0) -> bool:
    """Event data must stay JSON-friendly: str, int, float, bool, nil, arrays and str-keyed maps."""
    if depth > 32:
        return False
    if obj is None or isinstance(obj, bool | int | float | str):
        return True
    if isinstance(obj, list):
        return all(_plain(v, depth + 1) for v in obj)
    if isinstance(obj, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in obj.items())
    return False


def _checked_telemetry(columns: dict[str, Any]) -> TelemetryColumns:
    pid, p, v, q, r, s = (columns[k] for k in ("pid", "p", "v", "q", "r", "s"))
    # Whole-column checks run in C (set/map/min/max): central decodes ~100k records/s.
    _want(_types(pid) <= _STR, "pid holds non-strings")
    _want(
        _types(p) <= _INT and (not p or (min(p) >= 0 and max(p) < len(pid))), "p holds an index outside pid"
    )
    _want(_types(q) <= _INT and (not q or (min(q) >= 0 and max(q) <= 2)), "q holds an unknown quality")
    _want(_types(r) <= _STR, "r holds non-strings")
    _want(_types(s) <= _INT_OR_NIL, "s holds something other than nil or int")
    _want(_types(v) <= _VALUE_TYPES, "v holds an unsupported type")
    t = _undelta(columns["t"])
    _want(len(p) == len(v) == len(q) == len(r) == len(t) == len(s), "columns differ in length")
    # Column at a time: central decodes every record of a backlog drain here, so no per-record
    # Python function call (rows, where wanted, come from TelemetryColumns.__iter__).
    receipt = [ts / 1_000_000 for ts in t]
    source: list[float | None]
    if s.count(None) != len(s):
        source = [None if src is None else (ts + src) / 1_000_000 for ts, src in zip(t, s, strict=True)]
    else:
        source = [None] * len(t)
    return TelemetryColumns(pid, p, v, q, r, receipt, source)


def _event_rows(columns: dict[str, Any]) -> list[EventRow]:
    k, src, d = columns["k"], columns["src"], columns["d"]
    _want(all(isinstance(x, str) for x in k), "k holds non-strings")
    _want(all(isinstance(x, str) for x in src), "src holds non-strings")
    _want(all(isinstance(x, dict) and _plain(x) for x in d), "d holds something other than plain maps")
    t = _undelta(columns["t"])
    return [EventRow(kind=k[i], source=src[i], ts=from_us(t[i]), data=d[i]) for i in range(len(k))]


def _plain_blob(header: EnvelopeHeader, e2e_keys: Mapping[str, X25519PrivateKey] | None) -> bytes:
    if header.encryption is None:
        return header.records_blob
    if not e2e_keys:
        raise EnvelopeError(
            f"records are encrypted ({header.encryption}) and this receiver holds no decryption key",
            reason="undecryptable",
        )
    return decrypt(
        header.records_blob,
        keys=e2e_keys,
        suite=header.encryption,
        context=batch_context(header.gateway_id, header.lane.value, header.seq),
    )


def decode_records(
    header: EnvelopeHeader, *, e2e_keys: Mapping[str, X25519PrivateKey] | None = None
) -> list[TelemetryRow] | list[EventRow]:
    """Decrypt (when encrypted), decompress and decode the records; call this only after
    :func:`verify_envelope`. ``e2e_keys``: the receiver's X25519 keys by key id
    (``cloud_sync.e2e.encryption_key_id``); an encrypted batch without the key its blob names
    raises ``EnvelopeError`` with reason ``undecryptable``."""
    raw = _decompress(_plain_blob(header, e2e_keys))
    if header.lane is Lane.TELEMETRY:
        return list(_checked_telemetry(_columns(raw, _TELEMETRY_KEYS, header.record_count)))
    return _event_rows(_columns(raw, _EVENT_KEYS, header.record_count))


def decode_telemetry_columns(
    header: EnvelopeHeader, *, e2e_keys: Mapping[str, X25519PrivateKey] | None = None
) -> TelemetryColumns:
    """:func:`decode_records` for a telemetry batch, the records left as the columns they
    travel in: central's PostgreSQL store copies them column by column, and building one
    ``TelemetryRow`` per record only to take it apart again is most of the decoding time.
    The same checks; call it only after :func:`verify_envelope`."""
    _want(header.lane is Lane.TELEMETRY, "not a telemetry batch")
    raw = _decompress(_plain_blob(header, e2e_keys))
    return _checked_telemetry(_columns(raw, _TELEMETRY_KEYS, header.record_count))


def decode_envelope(payload: bytes, *, e2e_keys: Mapping[str, X25519PrivateKey] | None = None) -> Envelope:
    """Decode everything (not verified: call :func:`verify_envelope` before trusting it)."""
    header = decode_header(payload)
    records = decode_records(header, e2e_keys=e2e_keys)
    return Envelope(
        version=header.version,
        gateway_id=header.gateway_id,
        lane=header.lane,
        seq=header.seq,
        sealed_at=header.sealed_at,
        record_count=header.record_count,
        key_id=header.key_id,
        historical=header.historical,
        records=records,
        signed_bytes=header.signed_bytes,
        signature=header.signature,
        encryption=header.encryption,
    )
