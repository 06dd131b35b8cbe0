"""Central's command ledger (commands.db, a real SQLite file) and the state rules. No network."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_sync.central.commands.ledger import CommandLedger
from cloud_sync.central.commands.states import Outcome, outcome_of, state_of
from cloud_sync.commands import Command


def _draft(cid: str, now: float = 100.0, ttl: float = 60.0) -> Command:
    return Command(cid, 1, now, now + ttl, "log.level", {"level": "info", "minutes": 5}, "alice", "10.0.0.1")


@pytest.fixture
def ledger(tmp_path: Path) -> CommandLedger:
    return CommandLedger(tmp_path / "commands.db")


def test_states_follow_the_result_then_the_clock() -> None:
    assert state_of(status=None, unsent=False, not_after=10.0, now=10.0) == "pending"
    assert state_of(status=None, unsent=False, not_after=10.0, now=10.5) == "expired"
    assert state_of(status=None, unsent=True, not_after=10.0, now=5.0) == "unsent"
    # A late result (the gateway's event lane caught up) wins over expiry.
    assert state_of(status="done", unsent=False, not_after=10.0, now=99.0) == "done"


def test_only_well_formed_results_count() -> None:
    assert outcome_of({"cid": "c1", "status": "refused", "detail": "replay"}, 5.0) == Outcome(
        "c1", "refused", "replay", None, 5.0
    )
    for data in ({"cid": "c1", "status": "maybe"}, {"status": "done"}, {"cid": "", "status": "done"}, [1]):
        assert outcome_of(data, 5.0) is None


def test_cseq_is_per_gateway_and_survives_reopening(tmp_path: Path, ledger: CommandLedger) -> None:
    assert [ledger.issue("gw-a", _draft(f"a{i}")).cseq for i in range(3)] == [1, 2, 3]
    assert ledger.issue("gw-b", _draft("b0")).cseq == 1
    ledger.close()
    again = CommandLedger(tmp_path / "commands.db")
    assert again.issue("gw-a", _draft("a3")).cseq == 4
    again.close()


def test_a_result_closes_only_its_own_gateways_command_and_strays_are_counted(ledger: CommandLedger) -> None:
    ledger.issue("gw-a", _draft("c1"))
    done = Outcome("c1", "done", "", 3, 101.0)
    # gw-b reporting gw-a's cid does not close it: that is a stray result from gw-b.
    assert ledger.record("gw-b", [done], now=102.0) == (0, 1)
    assert ledger.record("gw-a", [done, Outcome("zz", "done", "", None, 101.0)], now=102.0) == (1, 1)
    # Seen again (every read scans from the oldest open command): neither matched nor counted twice.
    assert ledger.record("gw-a", [done, Outcome("zz", "done", "", None, 101.0)], now=103.0) == (0, 0)
    row = ledger.get("c1")
    assert row is not None and row.state(now=10_000.0) == "done" and row.value == 3
    assert ledger.stray_count() == 2


def test_pages_filter_by_derived_state(ledger: CommandLedger) -> None:
    ledger.issue("gw-a", _draft("old", now=0.0, ttl=10.0))  # expired at 50
    ledger.issue("gw-a", _draft("new", now=40.0, ttl=60.0))  # pending at 50
    ledger.issue("gw-a", _draft("lost", now=40.0, ttl=60.0))
    ledger.mark_unsent("lost", "broker unavailable")
    ledger.issue("gw-b", _draft("done", now=40.0))
    ledger.record("gw-b", [Outcome("done", "failed", "timeout", None, 41.0)], now=41.0)

    def cids(**kw: object) -> list[str]:
        return [r.cid for r in ledger.page(limit=10, now=50.0, **kw)]  # type: ignore[arg-type]

    assert cids(gateways=None) == ["done", "lost", "new", "old"]
    assert cids(gateways=None, states=["expired"]) == ["old"]
    assert cids(gateways=None, states=["pending", "unsent"]) == ["lost", "new"]
    assert cids(gateways=["gw-b"], states=["failed"]) == ["done"]
    assert cids(gateways=[]) == []
    first = ledger.page(gateways=None, limit=2, now=50.0)
    assert [r.cid for r in ledger.page(gateways=None, before=first[-1].id, limit=10, now=50.0)] == [
        "new",
        "old",
    ]
    assert ledger.open_since("gw-a", 0.0) == 0.0 and ledger.gateways_open(0.0) == ["gw-a"]
