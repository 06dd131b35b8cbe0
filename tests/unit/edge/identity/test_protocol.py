"""The enrolment contract's gateway side: request bodies, the renew signature's exact bytes,
and the checks on central's answer."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.keys import key_id
from edge.identity.material import new_keys
from edge.identity.protocol import GrantError, enroll_request, parse_grant, renew_message, renew_request
from tests.unit.edge.identity.central import make_central


def test_renew_message_is_the_contracts_bytes() -> None:
    csr, signing, e2e = "CSR-PEM\n", "SIGN-PEM\n", "E2E-PEM\n"
    digest = hashlib.sha256(b"CSR-PEM\nSIGN-PEM\nE2E-PEM\n").hexdigest()
    expected = f"gatehouse-renew-v1\ngw-estate-01\n0123456789abcdef\n1764633600.125\n{digest}".encode()
    message = renew_message(
        gateway_id="gw-estate-01",
        kid="0123456789abcdef",
        at=1764633600.125,
        csr=csr,
        signing_key=signing,
        e2e_key=e2e,
    )
    assert message == expected
    # Three decimals always, however the float prints.
    assert b"\n1764633600.000\n" in renew_message(
        gateway_id="g", kid="k", at=1764633600.0, csr="", signing_key="", e2e_key=""
    )


def test_renew_request_is_signed_by_the_current_key_over_what_it_sends() -> None:
    current = Ed25519PrivateKey.generate()
    keys = new_keys()
    body = renew_request(
        gateway_id="gw-1", current_key=current, kid=key_id(current.public_key()), at=1000.12345, keys=keys
    )
    assert body["at"] == 1000.123  # rounded before signing: the number sent is the text signed
    assert set(body) == {"gateway_id", "kid", "at", "csr", "signing_key", "e2e_key", "signature"}
    assert body["signing_key"] == keys.signing_public and body["e2e_key"] == keys.e2e_public
    message = renew_message(
        gateway_id=body["gateway_id"],
        kid=body["kid"],
        at=body["at"],
        csr=body["csr"],
        signing_key=body["signing_key"],
        e2e_key=body["e2e_key"],
    )
    current.public_key().verify(base64.b64decode(body["signature"]), message)  # raises if not
    assert b"%.3f" % body["at"] in message


def test_enroll_request_sends_public_halves_only() -> None:
    keys = new_keys()
    body = enroll_request("tok", keys)
    assert body["token"] == "tok"
    text = "".join(body.values())
    assert "PRIVATE" not in text
    assert body["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert body["signing_key"].startswith("-----BEGIN PUBLIC KEY-----")


def test_parse_grant_accepts_centrals_answer(tmp_path: Path) -> None:
    central = make_central(tmp_path, password="s3cret")
    keys = new_keys()
    grant = parse_grant(central.grant(keys, gateway_id="gw-estate-01"), keys)
    assert (grant.gateway_id, grant.estate, grant.password) == ("gw-estate-01", "estate-a", "s3cret")
    assert grant.encrypt == "x25519-aes256gcm" and grant.central_e2e_key is not None
    assert grant.kid == keys.kid


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a, other: a.update(client_cert=other["client_cert"]), "not for the key this gateway sent"),
        (lambda a, other: a.update(kid="0" * 16), "is not this gateway's signing key"),
        (lambda a, other: a.update(central_e2e_key=None), "encrypt is x25519-aes256gcm but"),
        (lambda a, other: a.pop("ca_cert"), "ca_cert"),
        (lambda a, other: a.update(central_signing_key=a["central_e2e_key"]), "not an Ed25519 key"),
        (lambda a, other: a.update(gateway_id="gw/1"), "MQTT topic level"),
        (lambda a, other: a.update(client_cert="junk"), "not a PEM certificate"),
    ],
)
def test_parse_grant_refuses_an_answer_that_does_not_fit(tmp_path: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    central = make_central(tmp_path)
    keys = new_keys()
    answer = central.grant(keys)
    other = central.grant(new_keys())
    change(answer, other)
    with pytest.raises(GrantError, match=message):
        parse_grant(answer, keys)


def test_parse_grant_refuses_a_certificate_from_another_ca(tmp_path: Path) -> None:
    keys = new_keys()
    answer = make_central(tmp_path / "a").grant(keys)
    answer["ca_cert"] = make_central(tmp_path / "b").grant(keys)["ca_cert"]
    with pytest.raises(GrantError, match="not issued by ca_cert"):
        parse_grant(answer, keys)
