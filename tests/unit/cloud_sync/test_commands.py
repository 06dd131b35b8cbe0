"""The command body codec, its signature, and the replay window (cloud_sync.commands)."""

from __future__ import annotations

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.ack import AckMessage
from cloud_sync.commands import WINDOW, Command, ReplayWindow, decode_command, encode_command
from cloud_sync.downlink import DownlinkSigner, verify_ack, verify_command
from cloud_sync.errors import EnvelopeError
from cloud_sync.keys import key_id
from cloud_sync.ports import Lane

NOW = 1_800_000_000.0


def _cmd(
    cseq: int = 1, action: str = "point.write", args: dict[str, object] | None = None, **kw: object
) -> Command:
    fields: dict[str, object] = {
        "cid": f"c{cseq}",
        "cseq": cseq,
        "issued_at": NOW,
        "not_after": NOW + 60,
        "action": action,
        "args": args if args is not None else {"point": "s/d/p", "value": 1.5},
        "by": "ops",
        "source": "10.0.0.1",
    }
    fields.update(kw)
    return Command(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("action", "args"),
    [
        ("alarm.ack", {"key": "s/d/p/hi", "comment": ""}),
        ("alarm.shelve", {"key": "s/d/p/hi", "until": NOW + 3600, "reason": "maintenance"}),
        ("point.write", {"point": "s/d/p", "value": True}),
        ("point.write", {"point": "s/d/p", "value": "auto"}),
        ("outbox.resend", {"lane": "event", "first": 5, "last": 9}),
        ("log.level", {"level": "debug", "minutes": 30}),
    ],
)
def test_round_trip(action: str, args: dict[str, object]) -> None:
    command = _cmd(action=action, args=args)
    assert decode_command(encode_command(command)) == command


@pytest.mark.parametrize(
    ("action", "args", "words"),
    [
        ("reboot", {}, "unknown action"),
        ("point.write", {"point": "s/d/p"}, "value must be"),
        ("point.write", {"point": "s/d/p", "value": float("nan")}, "finite"),
        ("point.write", {"point": "s/d/p", "value": 1, "force": True}, "unknown argument"),
        ("outbox.resend", {"lane": "event", "first": 9, "last": 5}, "first ≤ last"),
        ("outbox.resend", {"lane": "video", "first": 1, "last": 2}, "lane must be"),
        ("log.level", {"level": "trace", "minutes": 5}, "level must be"),
        ("log.level", {"level": "info", "minutes": 10_000}, "minutes"),
        ("alarm.ack", {"key": "x" * 600}, "512"),
    ],
)
def test_bad_commands_are_refused_before_signing(action: str, args: dict[str, object], words: str) -> None:
    with pytest.raises(EnvelopeError, match=words):
        encode_command(_cmd(action=action, args=args))


def test_signed_and_verified_only_for_its_gateway_and_kind() -> None:
    key = Ed25519PrivateKey.generate()
    keys = {key_id(key.public_key()): key.public_key()}
    signer = DownlinkSigner(key, clock_us=lambda: 1)
    payload = signer.sign_command("gw-a", _cmd())
    assert verify_command(payload, keys=keys, gateway_id="gw-a").command == _cmd()
    with pytest.raises(EnvelopeError) as wrong:
        verify_command(payload, keys=keys, gateway_id="gw-b")
    assert wrong.value.reason == "wrong_gateway"
    with pytest.raises(EnvelopeError) as kind:  # a command is never taken for an ack
        verify_ack(payload, keys=keys, gateway_id="gw-a")
    assert kind.value.reason == "wrong_kind"
    ack = signer.sign_ack("gw-a", AckMessage(lane=Lane.EVENT, acked=3, missing=(), ts=NOW))
    with pytest.raises(EnvelopeError) as other:
        verify_command(ack, keys=keys, gateway_id="gw-a")
    assert other.value.reason == "wrong_kind"


def test_replay_window() -> None:
    window = ReplayWindow()
    first = _cmd(5)
    assert window.check(first, NOW) is None
    window.accept(first)
    assert window.check(first, NOW) == "replay"
    assert window.check(_cmd(3), NOW) is None  # overtaken on the way: still runs once
    window.accept(_cmd(3))
    assert window.check(_cmd(3), NOW) == "replay"
    window.accept(_cmd(5 + WINDOW + 10))
    assert window.check(_cmd(6), NOW) == "replay"  # too old to tell: refused
    assert window.check(_cmd(9999, not_after=NOW - 1), NOW) == "expired"
    assert window.check(_cmd(9999, not_after=NOW + 2 * 86_400), NOW) == "bad_expiry"
    restored = ReplayWindow.from_dict(window.to_dict())
    assert restored == window
    with pytest.raises(ValueError):
        ReplayWindow.from_dict({"highest": "x"})


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=300)
    | st.builds(
        lambda v: msgpack.packb(v),
        st.recursive(
            st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
            ),
            max_leaves=20,
        ),
    )
)
def test_any_body_decodes_or_raises_envelope_error(body: bytes) -> None:
    try:
        decode_command(body)
    except EnvelopeError:
        pass
