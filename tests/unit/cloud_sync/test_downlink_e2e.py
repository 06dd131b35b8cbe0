"""Commands encrypted to one gateway (cloud_sync.downlink + cloud_sync.e2e): verified, then opened.

The broker sees neither the action's arguments nor the operator; the gateway checks central's
signature before it decrypts, and refuses what it cannot open as ``undecryptable``.
"""

from __future__ import annotations

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud_sync.ack import AckMessage
from cloud_sync.commands import MAX_SITE_BYTES, Command
from cloud_sync.downlink import (
    MAX_DOWNLINK_BYTES,
    REASONS,
    DownlinkSigner,
    encode_downlink,
    verify_ack,
    verify_command,
)
from cloud_sync.e2e import SUITE_AES, SUITE_SM4, SUITES, keys_by_id
from cloud_sync.errors import EnvelopeError, SignatureError
from cloud_sync.keys import key_id
from cloud_sync.ports import Lane

NOW = 1_800_000_000.0
CENTRAL = Ed25519PrivateKey.from_private_bytes(bytes(range(100, 132)))
PINNED = {key_id(CENTRAL.public_key()): CENTRAL.public_key()}
GATEWAY_E2E = X25519PrivateKey.from_private_bytes(bytes(range(0x80, 0xA0)))
GATEWAY_KEYS = keys_by_id(GATEWAY_E2E)
OPERATOR = "night-shift-operator-7"
COMMAND = Command(
    cid="c-42",
    cseq=42,
    issued_at=NOW,
    not_after=NOW + 60,
    action="point.write",
    args={"point": "site/valve/setpoint", "value": 88.125},
    by=OPERATOR,
    source="10.1.2.3",
)


def _signer(start: int = 1_000) -> DownlinkSigner:
    return DownlinkSigner(CENTRAL, clock_us=lambda: start)


def _refusal(payload: bytes, **kw: object) -> str:
    with pytest.raises(EnvelopeError) as caught:
        verify_command(payload, keys=PINNED, gateway_id="gw-a", **kw)  # type: ignore[arg-type]
    assert caught.value.reason in REASONS
    return caught.value.reason


@pytest.mark.parametrize("suite", SUITES)
def test_round_trip_and_the_broker_sees_no_arguments(suite: str) -> None:
    payload = _signer().sign_command("gw-a", COMMAND, encrypt_to=GATEWAY_E2E.public_key(), suite=suite)
    for secret in (OPERATOR.encode(), b"site/valve/setpoint", b"point.write", msgpack.packb(88.125)):
        assert secret not in payload
    signed = verify_command(payload, keys=PINNED, gateway_id="gw-a", e2e_keys=GATEWAY_KEYS)
    assert signed.command == COMMAND and signed.dseq == 1_000
    clear = _signer().sign_command("gw-a", COMMAND)
    assert OPERATOR.encode() in clear  # in clear it is there: the check above is not vacuous


def test_header_has_enc_before_body() -> None:
    payload = _signer().sign_command("gw-a", COMMAND, encrypt_to=GATEWAY_E2E.public_key(), suite=SUITE_SM4)
    _magic, signed, _sig = msgpack.unpackb(payload, raw=False)
    header = msgpack.unpackb(signed, raw=False)
    assert list(header) == ["v", "kind", "gw", "kid", "dseq", "enc", "body"]
    assert header["enc"] == SUITE_SM4 and header["body"][:2] == b"E1"


def test_unencrypted_commands_keep_working_with_or_without_keys() -> None:
    payload = _signer().sign_command("gw-a", COMMAND)
    assert verify_command(payload, keys=PINNED, gateway_id="gw-a").command == COMMAND
    assert verify_command(payload, keys=PINNED, gateway_id="gw-a", e2e_keys=GATEWAY_KEYS).command == COMMAND


def test_without_the_gateways_key_it_is_refused_as_undecryptable() -> None:
    payload = _signer().sign_command("gw-a", COMMAND, encrypt_to=GATEWAY_E2E.public_key())
    assert _refusal(payload) == "undecryptable"
    assert _refusal(payload, e2e_keys={}) == "undecryptable"
    assert _refusal(payload, e2e_keys=keys_by_id(X25519PrivateKey.generate())) == "undecryptable"


def test_signature_and_addressee_are_checked_before_decryption() -> None:
    payload = _signer().sign_command("gw-a", COMMAND, encrypt_to=GATEWAY_E2E.public_key())
    # The last byte is the signature's; flip a ciphertext byte instead (inside signed_bytes).
    _magic, signed, _sig = msgpack.unpackb(payload, raw=False)
    at = payload.index(signed) + len(signed) - 1
    tampered = payload[:at] + bytes([payload[at] ^ 1]) + payload[at + 1 :]
    with pytest.raises(SignatureError):
        verify_command(tampered, keys=PINNED, gateway_id="gw-a", e2e_keys=GATEWAY_KEYS)
    # Captured for gw-a, replayed to gw-b (which would not hold the key anyway): wrong_gateway.
    with pytest.raises(SignatureError) as caught:
        verify_command(payload, keys=PINNED, gateway_id="gw-b", e2e_keys=GATEWAY_KEYS)
    assert caught.value.reason == "wrong_gateway"


def test_a_body_moved_under_another_dseq_does_not_decrypt() -> None:
    """Even signed by central: the ciphertext is bound to its gateway id and dseq."""
    payload = _signer().sign_command("gw-a", COMMAND, encrypt_to=GATEWAY_E2E.public_key())
    _magic, signed, _sig = msgpack.unpackb(payload, raw=False)
    header = msgpack.unpackb(signed, raw=False)
    moved = encode_downlink(
        kind="cmd",
        gateway_id="gw-a",
        dseq=header["dseq"] + 1,
        body=header["body"],
        private_key=CENTRAL,
        enc=header["enc"],
    )
    assert _refusal(moved, e2e_keys=GATEWAY_KEYS) == "undecryptable"


def test_acks_are_never_encrypted_and_unknown_suites_are_malformed() -> None:
    ack = AckMessage(Lane.TELEMETRY, 5, (), NOW)
    signer = _signer()
    body = msgpack.packb({"v": 2, "lane": "telemetry", "acked": 5, "missing": [], "ts": NOW})
    forged = encode_downlink(
        kind="ack", gateway_id="gw-a", dseq=7, body=body, private_key=CENTRAL, enc=SUITE_AES
    )
    with pytest.raises(EnvelopeError) as caught:
        verify_ack(forged, keys=PINNED, gateway_id="gw-a")
    assert caught.value.reason == "malformed"
    assert verify_ack(signer.sign_ack("gw-a", ack), keys=PINNED, gateway_id="gw-a").ack == ack
    with pytest.raises(ValueError, match="unknown encryption suite"):
        signer.sign_command("gw-a", COMMAND, encrypt_to=GATEWAY_E2E.public_key(), suite="off")
    # An unknown suite in a validly signed header: refused as malformed, before any decryption.
    payload = signer.sign_command("gw-a", COMMAND, encrypt_to=GATEWAY_E2E.public_key())
    _magic, signed, _sig = msgpack.unpackb(payload, raw=False)
    header = msgpack.unpackb(signed, raw=False) | {"enc": "x25519-rot13"}
    resigned_bytes = msgpack.packb(header, use_bin_type=True)
    resigned = msgpack.packb(["GHD1", resigned_bytes, CENTRAL.sign(resigned_bytes)], use_bin_type=True)
    assert _refusal(resigned, e2e_keys=GATEWAY_KEYS) == "malformed"


def test_a_largest_site_push_still_fits_encrypted() -> None:
    text = "# " + "x" * (MAX_SITE_BYTES - 3) + "\n"
    command = Command(
        cid="push-1",
        cseq=1,
        issued_at=NOW,
        not_after=NOW + 60,
        action="config.push",
        args={"text": text, "version": "v" * 64, "health_s": 120},
        by=OPERATOR,
        source="10.1.2.3",
    )
    payload = _signer().sign_command("gw-a", command, encrypt_to=GATEWAY_E2E.public_key())
    assert len(payload) <= MAX_DOWNLINK_BYTES
    assert verify_command(payload, keys=PINNED, gateway_id="gw-a", e2e_keys=GATEWAY_KEYS).command == command
