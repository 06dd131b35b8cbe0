"""An independent check of docs/protocol.md §2 and §9 with PyNaCl (libsodium's Ed25519).

Deliberately imports nothing of Gatehouse: it reads the committed example batch and the public
key, and parses the bytes by hand following the document, so a mistake shared by the sealer and
the reference verifier cannot hide here.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import msgpack
import nacl.exceptions
import nacl.signing
import pytest
import zstandard

FIXTURES = Path(__file__).parents[2] / "fixtures" / "protocol"


def raw_public_key_from_pem(pem: str) -> bytes:
    # An Ed25519 SubjectPublicKeyInfo is 44 bytes of DER: a fixed 12-byte prefix, then the key.
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    der = base64.b64decode(body)
    assert len(der) == 44 and der[:12] == bytes.fromhex("302a300506032b6570032100")
    return der[12:]


def read_bin_at(data: bytes, offset: int) -> tuple[bytes, int]:
    """Read one msgpack bin (8/16/32) by hand: its content and the offset after it."""
    tag = data[offset]
    width = {0xC4: 1, 0xC5: 2, 0xC6: 4}[tag]
    length = int.from_bytes(data[offset + 1 : offset + 1 + width], "big")
    start = offset + 1 + width
    return data[start : start + length], start + length


def split_envelope(payload: bytes) -> tuple[bytes, bytes]:
    """§2.1 by hand: 0x93, fixstr "GH1", bin signed_bytes, bin signature, nothing after."""
    assert payload[0] == 0x93
    assert payload[1:5] == b"\xa3GH1"
    signed, offset = read_bin_at(payload, 5)
    signature, end = read_bin_at(payload, offset)
    assert end == len(payload)
    assert len(signature) == 64
    return signed, signature


@pytest.fixture
def example() -> tuple[bytes, bytes]:
    payload = (FIXTURES / "example-batch.bin").read_bytes()
    public = raw_public_key_from_pem((FIXTURES / "example-gateway.pub").read_text())
    return payload, public


def test_example_batch_verifies_with_pynacl(example: tuple[bytes, bytes]) -> None:
    payload, public = example
    signed, signature = split_envelope(payload)
    # The example's offsets, as annotated in §9.
    assert payload.index(signed) == 7 and len(signed) == 242
    nacl.signing.VerifyKey(public).verify(signed, signature)

    header = msgpack.unpackb(signed, raw=False)
    assert list(header) == ["v", "gw", "lane", "seq", "sealed_at", "n", "kid", "hist", "codec", "records"]
    assert header["kid"] == hashlib.sha256(public).hexdigest()[:16] == "56475aa75463474c"
    assert (header["v"], header["gw"], header["lane"], header["seq"]) == (1, "gw-demo", "telemetry", 42)
    assert (header["sealed_at"], header["n"], header["hist"], header["codec"]) == (
        1767225610.5,
        3,
        False,
        "zstd",
    )

    blob = header["records"]
    declared = zstandard.get_frame_parameters(blob).content_size
    assert declared == 133 <= 64 * 1024 * 1024
    columns = msgpack.unpackb(zstandard.ZstdDecompressor().decompress(blob), raw=False)
    assert list(columns) == ["pid", "p", "v", "q", "r", "t", "s"]

    receipt: list[int] = []
    for delta in columns["t"]:
        receipt.append(delta + (receipt[-1] if receipt else 0))
    records = [
        (
            columns["pid"][columns["p"][i]],
            columns["v"][i],
            columns["q"][i],
            columns["r"][i],
            receipt[i] / 1e6,
            None if columns["s"][i] is None else (receipt[i] + columns["s"][i]) / 1e6,
        )
        for i in range(header["n"])
    ]
    assert records == [
        ("estate1/meter1/p_total", 1520.5, 0, "", 1767225600.0, None),
        ("estate1/tank2/level", 2.25, 0, "", 1767225600.25, 1767225600.125),
        ("estate1/meter1/p_total", None, 2, "comm_failure", 1767225605.0, None),
    ]


def test_pynacl_rejects_any_flipped_signed_byte(example: tuple[bytes, bytes]) -> None:
    payload, public = example
    signed, signature = split_envelope(payload)
    key = nacl.signing.VerifyKey(public)
    for i in range(len(signed)):
        tampered = bytearray(signed)
        tampered[i] ^= 0x01
        with pytest.raises(nacl.exceptions.BadSignatureError):
            key.verify(bytes(tampered), signature)


def test_pynacl_rejects_another_key(example: tuple[bytes, bytes]) -> None:
    payload, _ = example
    signed, signature = split_envelope(payload)
    other = nacl.signing.SigningKey(bytes(range(1, 33))).verify_key
    with pytest.raises(nacl.exceptions.BadSignatureError):
        other.verify(signed, signature)
