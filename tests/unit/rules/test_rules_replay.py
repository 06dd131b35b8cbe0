"""The rule test mode: the example scenario replays to the expected transitions and commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from rules.replay import (
    Scenario,
    check_expectations,
    format_table,
    parse_duration,
    replay,
    scenario_rules,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "examples" / "scenarios" / "fire-zone2.yaml"


def load() -> Scenario:
    return Scenario.model_validate(YAML(typ="safe").load(EXAMPLE.read_text(encoding="utf-8")))


def test_fire_zone2_example_replays_as_documented() -> None:
    scenario = load()
    rows = replay(scenario_rules(scenario), scenario)
    at = {(r.t_s, r.kind, r.source) for r in rows}
    assert (5.0, "alarm.raised", "demo/fire_panel/zone2_detector_a/fire") in at
    assert not any(r.kind.startswith("linkage") and r.t_s < 20 for r in rows)  # one detector is not enough
    assert (20.0, "linkage.started", "fire-zone2") in at
    commands = [(r.t_s, r.source) for r in rows if r.kind == "command"]
    order = [src.split("/", 1)[1] for _, src in commands]
    assert order[:7] == [
        "doors/escape_release",
        "barriers/carpark_gate",
        "broadcast/fire_mode",
        "lighting/zone2_evac",
        "lighting/zone1_evac",  # from the fire zone outward, a second apart
        "lighting/zone3_evac",
        "vents/zone2_open",
    ]
    fan = next(t for t, src in commands if src.endswith("fans/zone2_smoke_fan"))
    assert fan == 24.0  # on the vent's feedback, not before
    charger = [r for r in rows if r.kind == "linkage.failed" and "chargers" in r.detail]
    assert len(charger) == 3  # retries: 2 → three attempts
    assert (110.0, "linkage.restoring", "fire-zone2") in at
    assert any(r.kind == "linkage.skipped" and "manual override" in r.detail for r in rows)
    assert rows[-1].kind == "linkage.restored"
    assert not any(r.kind == "alarm.raised" and r.t_s > 20 for r in rows)  # no duplicates (R2.3)


def test_the_table_is_readable() -> None:
    scenario = load()
    table = format_table(replay(scenario_rules(scenario), scenario))
    lines = table.splitlines()
    assert lines[0].split() == ["t", "event", "source", "detail"]
    assert set(lines[1]) <= {"-", " "}
    assert any(line.startswith("20s") and "linkage.started" in line for line in lines)


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30.0), ("1.5min", 90.0), ("2h", 7200.0), (5, 5.0)])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


def test_expectations_pass_on_the_example_and_fail_when_not_met() -> None:
    scenario = load()
    rows = replay(scenario_rules(scenario), scenario)
    assert scenario.expect and check_expectations(scenario, rows) == []
    data = scenario.model_dump(by_alias=True)
    data["results"] = {}  # the charger now accepts its writes: no failure audit
    data["expect"].append({"event": "alarm.raised", "at": 5.0, "absent": True})
    broken = Scenario.model_validate(data)
    failures = check_expectations(broken, replay(scenario_rules(broken), broken))
    assert failures == [
        "expected linkage.failed detail ~ 'attempt 3'",
        "unexpected: no alarm.raised at 5s",
    ]
