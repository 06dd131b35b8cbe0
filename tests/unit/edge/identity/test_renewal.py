"""The renewal task against an in-process central (a fake ``post``): when it renews, what it
sends, what it writes, and how it waits after a failure or a refusal."""

from __future__ import annotations

import asyncio
import base64
import random
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.identity.client import CentralUnreachable, Refused
from edge.identity.folder import Identity, read_identity, write_enrolment
from edge.identity.material import KeySet, new_keys
from edge.identity.protocol import RENEW_PATH, parse_grant, renew_message
from edge.identity.renewal import RenewalPolicy, Renewer
from tests.unit.edge.identity.central import DAY, Central, make_central


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeCentral:
    """Answers renewals like central would: checks the signature by the registered key."""

    def __init__(self, central: Central, clock: Clock, identity: Identity) -> None:
        self.central, self.clock = central, clock
        self.registered = {identity.kid: identity.signing_key().public_key()}
        self.calls: list[dict[str, Any]] = []
        self.fail_with: Exception | None = None

    async def post(
        self, base: str, path: str, body: dict[str, Any], *, ca_file: Path | None
    ) -> dict[str, Any]:
        self.calls.append({"base": base, "path": path, "body": body, "ca_file": ca_file})
        if self.fail_with is not None:
            raise self.fail_with
        public = self.registered[body["kid"]]
        message = renew_message(
            gateway_id=body["gateway_id"],
            kid=body["kid"],
            at=body["at"],
            csr=body["csr"],
            signing_key=body["signing_key"],
            e2e_key=body["e2e_key"],
        )
        public.verify(base64.b64decode(body["signature"]), message)
        new_public = serialization.load_pem_public_key(body["signing_key"].encode())
        assert isinstance(new_public, Ed25519PublicKey)
        keys = _ProxyKeys(body)
        answer = self.central.grant(keys, now=self.clock.now)  # type: ignore[arg-type]
        return answer


class _ProxyKeys:
    """Enough of a KeySet for Central.grant: the CSR and the key id of the sent key."""

    def __init__(self, body: dict[str, Any]) -> None:
        from cloud_sync.keys import key_id, parse_public_key

        self.csr = body["csr"]
        self.kid = key_id(parse_public_key(body["signing_key"]))


def _enrolled(tmp_path: Path, central: Central, now: float) -> Identity:
    keys: KeySet = new_keys()
    grant = parse_grant(central.grant(keys, now=now), keys)
    return write_enrolment(
        tmp_path / "identity", grant, keys, central_url="https://c.example", api_ca=b"ca\n", now=now
    )


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Identity, FakeCentral, Clock]:
    clock = Clock(1_000_000.0)
    central = make_central(tmp_path)
    identity = _enrolled(tmp_path, central, clock.now)
    return identity, FakeCentral(central, clock, identity), clock


async def test_renews_when_due_and_switches_before_pruning(
    setup: tuple[Identity, FakeCentral, Clock],
) -> None:
    identity, central, clock = setup
    switched: list[tuple[Identity, bool]] = []

    async def switch(renewed: Identity) -> None:
        # At the switch the previous version is still on disk (the uplink may still read it).
        switched.append((renewed, identity.file("signing.key").is_file()))

    renewer = Renewer(identity, switch=switch, wall=clock, post=central.post)
    assert renewer.status()["state"] == "ok"
    task = asyncio.create_task(renewer.run())
    try:
        await asyncio.sleep(0.05)
        assert central.calls == []  # not due yet
        clock.now = identity.renew_after + 1
        renewer.renew_soon()
        for _ in range(200):
            if renewer.renewals:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert renewer.renewals == 1
    call = central.calls[0]
    assert (call["base"], call["path"], call["body"]["kid"]) == (
        "https://c.example",
        RENEW_PATH,
        identity.kid,
    )
    assert call["ca_file"] == identity.api_ca
    renewed, previous_there = switched[0]
    assert previous_there and renewed.version == 2 and renewed.kid != identity.kid
    assert read_identity(identity.folder) == renewed
    assert not identity.file("signing.key").exists()  # pruned after the switch
    status = renewer.status()
    assert status["state"] == "ok" and status["version"] == 2 and status["renew_after"] > clock.now


async def test_unreachable_central_is_retried_with_growing_delays(
    setup: tuple[Identity, FakeCentral, Clock],
) -> None:
    identity, central, clock = setup
    clock.now = identity.renew_after + 1
    central.fail_with = CentralUnreachable("cannot reach https://c.example: connection refused")

    async def switch(renewed: Identity) -> None:
        raise AssertionError("nothing to switch to")

    policy = RenewalPolicy(retry_initial_s=60.0, retry_max_s=600.0)
    renewer = Renewer(
        identity, switch=switch, wall=clock, post=central.post, policy=policy, rng=random.Random(1)
    )
    delays = []
    for _ in range(6):
        await renewer._attempt()
        delays.append(renewer.status()["next_attempt_at"] - clock.now)
    assert renewer.status()["state"] == "retrying" and renewer.status()["failures"] == 6
    assert "connection refused" in renewer.status()["last_error"]
    assert 30 <= delays[0] <= 60 and delays[-1] <= 600 and delays[-1] >= 300
    assert read_identity(identity.folder) == identity  # nothing written
    central.fail_with = None
    renewer_ok = Renewer(identity, switch=_noop, wall=clock, post=central.post)
    await renewer_ok._attempt()
    assert renewer_ok.status()["failures"] == 0 and renewer_ok.renewals == 1


async def _noop(renewed: Identity) -> None:
    return None


async def test_a_refusal_is_shown_and_retried_much_later(setup: tuple[Identity, FakeCentral, Clock]) -> None:
    identity, central, clock = setup
    clock.now = identity.renew_after + 1
    central.fail_with = Refused("renew_refused", "revoked")
    renewer = Renewer(
        identity, switch=_noop, wall=clock, post=central.post, policy=RenewalPolicy(refused_retry_s=7200)
    )
    await renewer._attempt()
    status = renewer.status()
    assert (status["state"], status["refused"]) == ("refused", "revoked")
    assert status["next_attempt_at"] == clock.now + 7200
    clock.now = identity.not_after + 1
    assert renewer.status()["state"] == "expired"


async def test_a_failed_switch_keeps_the_previous_version(setup: tuple[Identity, FakeCentral, Clock]) -> None:
    identity, central, clock = setup

    async def switch(renewed: Identity) -> None:
        raise ValueError("uplink stopped")

    renewer = Renewer(identity, switch=switch, wall=clock, post=central.post)
    renewed = await renewer.renew_once()
    assert renewed.version == 2 and identity.file("signing.key").is_file()
    assert "did not switch" in str(renewer.status()["last_error"])
    assert clock.now + 20 * DAY - 1 <= renewer.status()["renew_after"]
