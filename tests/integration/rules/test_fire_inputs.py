"""The fire-input examples of docs/rules.md, replayed by `gatehouse rules test` (issue 18): two
standalone detectors in one zone, and a detector with a manual call point, each start linkage;
one detector alone never does. The new profiles load and their simulators answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.cli import main
from edge.config.loader import load_site
from simulators.models import make_model

SITE = Path(__file__).resolve().parents[2] / "fixtures" / "sites" / "fire-inputs"
DOCS = Path(__file__).resolve().parents[3] / "docs" / "rules.md"


@pytest.mark.parametrize("scenario", ["two-detectors.yaml", "detector-call-point.yaml"])
def test_fire_input_examples_start_linkage(scenario: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "test", str(SITE / "site.yaml"), str(SITE / scenario)]) == 0
    out = capsys.readouterr().out
    assert "4 of 4 expectations met" in out, out


def test_the_docs_show_the_same_rules() -> None:
    text = DOCS.read_text(encoding="utf-8")
    site = (SITE / "site.yaml").read_text(encoding="utf-8")
    for trigger in (
        'count(alarms(zone="5", class="fire")) >= 2',
        'alarm("mcp-z5.call_point") and (alarm("smoke-z5a.fire") or alarm("smoke-z5b.fire"))',
    ):
        assert trigger in text and trigger in site, trigger
    # the panel form that works with one alarm per zone is the one the docs lead with
    assert 'alarm("fire-panel.zone2_fire") and point("fire-panel.zone2_detectors_in_alarm") >= 2' in text


def test_profiles_load_and_simulators_follow_the_scenarios() -> None:
    site = load_site(SITE / "site.yaml")
    zones = {d.id: d.config.zone for d in site.devices}
    assert zones["smoke-z5a"] == zones["mcp-z5"] == "5"
    detector = make_model("smoke_detector")
    assert detector.values()["fire"] is False
    detector.inject("smoke", {"db_m": 2.5})
    assert detector.values()["fire"] is True and detector.values()["smoke_db_m"] == 2.5
    module = make_model("fire_io_module")
    module.inject("call_point")
    assert module.values()["call_point"] is True
    assert module.apply_write("output", True) and module.values()["output_feedback"] is True
    module.inject("no_feedback")
    assert module.values()["output_feedback"] is False
