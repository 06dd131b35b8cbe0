"""Central's ingest decisions: verify → store → ack, alone and in groups, with a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.central.ingest import Ingestor, KeyRegistry, parse_uplink_topic
from cloud_sync.central.store import CentralStore
from cloud_sync.envelope import make_sealer
from cloud_sync.keys import key_id
from cloud_sync.ports import Lane, Sealer, TelemetryRow

KEY = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
OLD_KEY = Ed25519PrivateKey.from_private_bytes(b"\x08" * 32)
SEAL = make_sealer("gw-a", key_id(KEY.public_key()), KEY)


def batch(seq: int, *, value: float = 1.0, seal: Sealer = SEAL) -> bytes:
    rows = [TelemetryRow("s/d/p", value + seq, 0, "", 100.0 + seq, None)]
    return seal(lane=Lane.TELEMETRY, seq=seq, rows=rows, historical=False, sealed_at=1.0)


@pytest.fixture
def ingestor(tmp_path: Path) -> Ingestor:
    registry = KeyRegistry()
    registry.enroll("gw-a", KEY.public_key())
    registry.enroll("gw-a", OLD_KEY.public_key())  # a rotation: both keys valid for a while
    return Ingestor(CentralStore(tmp_path / "c.db"), registry, clock=lambda: 1234.5)


def test_a_group_commits_together_and_reports_each_batch(ingestor: Ingestor) -> None:
    items = [
        (batch(2), "gw-a", "telemetry"),
        (b"junk", "gw-a", "telemetry"),
        (batch(1), "gw-a", "telemetry"),
        (batch(1), "gw-a", "telemetry"),  # the same batch twice in one group
        (batch(3, value=9.0), "gw-a", "telemetry"),
    ]
    outcomes = ingestor.ingest_many(items, transport="mqtt")
    assert [o.status for o in outcomes] == ["stored", "rejected", "stored", "duplicate", "stored"]
    assert outcomes[1].ack is None and outcomes[1].reason == "malformed"
    assert all(o.ack is not None and o.ack.acked == 3 and o.ack.ts == 1234.5 for o in outcomes if o.ack)
    assert ingestor.counters == {"stored": 3, "duplicate": 1, "rejected": 1, "records": 3, "audit_dropped": 0}


def test_a_rotated_key_still_verifies(ingestor: Ingestor) -> None:
    old_seal = make_sealer("gw-a", key_id(OLD_KEY.public_key()), OLD_KEY)
    assert (
        ingestor.ingest(
            batch(1, seal=old_seal), gateway_id="gw-a", lane="telemetry", transport="https"
        ).status
        == "stored"
    )


def test_a_conflicting_duplicate_is_acked_but_audited(ingestor: Ingestor, tmp_path: Path) -> None:
    ingestor.ingest(batch(1), gateway_id="gw-a", lane="telemetry", transport="mqtt")
    again = ingestor.ingest(batch(1, value=5.0), gateway_id="gw-a", lane="telemetry", transport="mqtt")
    assert again.status == "duplicate" and again.reason == "conflict" and again.ack is not None


def test_state_online_yields_an_ack_per_lane(ingestor: Ingestor) -> None:
    ingestor.ingest(batch(1), gateway_id="gw-a", lane="telemetry", transport="mqtt")
    acks = ingestor.note_state("gw-a", json.dumps({"state": "online", "seq": {"telemetry": 1}}).encode())
    assert [(a.lane, a.acked) for a in acks] == [(Lane.EVENT, 0), (Lane.TELEMETRY, 1)]
    assert ingestor.note_state("gw-a", b'{"state": "offline"}') == []
    assert ingestor.note_state("gw-a", b"not json") == []
    assert ingestor.note_state("gw-z", b'{"state": "online"}') == []


@pytest.mark.parametrize(
    ("topic", "route"),
    [
        ("gh/v1/gw-a/up/telemetry", ("gw-a", "telemetry")),
        ("gh/v1/gw-a/up/event", ("gw-a", "event")),
        ("gh/v1/gw-a/state", None),
        ("gh/v2/gw-a/up/event", None),
        # Under a gateway's up/ but not a lane: routed, so that ingest rejects it as bad_route.
        ("gh/v1/gw-a/up/event/x", ("gw-a", "event/x")),
        ("gh/v1/gw-a/up", ("gw-a", "")),
        ("gh/v1/gw-a/upx/event", None),
    ],
)
def test_uplink_topics(topic: str, route: tuple[str, str] | None) -> None:
    assert parse_uplink_topic(topic) == route
