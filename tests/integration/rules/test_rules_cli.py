"""`gatehouse rules test` on the demo estate, and `gatehouse check` locating rule mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cli import main

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "config" / "examples" / "demo-estate.yaml"
SCENARIO = ROOT / "config" / "examples" / "scenarios" / "demo-fire-t2.yaml"


def test_rule_test_mode_replays_the_demo_fire(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "test", str(DEMO), str(SCENARIO)]) == 0
    out = capsys.readouterr().out
    assert "linkage.started    fire-t2" in out
    assert "16 of 16 expectations met" in out


def test_rule_test_mode_reports_an_unmet_expectation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "one-detector.yaml"
    scenario.write_text(
        "name: one detector\nuntil: 30s\nsteps:\n"
        "  - {at: 0s, set: {fire-panel.zone2_fire: false, fire-panel.zone2_detectors_in_alarm: 0}}\n"
        "  - {at: 5s, set: {fire-panel.zone2_fire: true, fire-panel.zone2_detectors_in_alarm: 1}}\n"
        "expect:\n  - {event: linkage.started, source: fire-t2}\n",
        encoding="utf-8",
    )
    assert main(["rules", "test", str(DEMO), str(scenario), "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["failures"] == ["expected linkage.started source ~ 'fire-t2'"]
    assert any(r["event"] == "alarm.raised" for r in payload["rows"])


def test_rule_test_mode_refuses_a_scenario_naming_unknown_points(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "typo.yaml"
    scenario.write_text(
        "until: 10s\nsteps:\n"
        "  - {at: 0s, set: {fire-panel.zone2_fir: true}}\n"
        "  - {at: 1s, ack: fire-panel.zone2_fire/fires, by: duty1}\n"
        "  - {at: 2s, confirm: fire-t9}\n",
        encoding="utf-8",
    )
    assert main(["rules", "test", str(DEMO), str(scenario)]) == 1
    out = capsys.readouterr().out
    assert "steps[0].set: unknown point 'fire-panel.zone2_fir'" in out
    assert "steps[1].ack: unknown alarm 'fire-panel.zone2_fire/fires'" in out
    assert "steps[2].confirm: unknown linkage rule 'fire-t9'" in out


def _demo_with_rules(tmp_path: Path, rules: str) -> tuple[Path, list[str]]:
    devices = DEMO.read_text(encoding="utf-8").split("\n# --- alarm and linkage rules")[0]
    devices = devices.replace("data_dir: ./data/demo-estate", f"data_dir: {tmp_path}")
    path = tmp_path / "site.yaml"
    path.write_text(devices + "\n" + rules, encoding="utf-8")
    return path, path.read_text(encoding="utf-8").splitlines()


def _problems(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    assert main(["check", str(path), "--json"]) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    return {p["path"]: p for p in problems}


def test_check_reports_rule_mistakes_with_file_line_column_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, lines = _demo_with_rules(
        tmp_path,
        "rules:\n"
        "  alarms:\n"
        "    - {point: water-tank-a.nope, id: high, kind: high, setpoint: 3}\n"
        "  linkage:\n"
        "    - id: bad\n"
        '      trigger: alarm("fire-panel.zone2_fire") and tank(1)\n'
        "      steps:\n"
        "        - {write: door-t2-stair.release, value: true}\n",
    )
    by_path = _problems(path, capsys)
    assert set(by_path) == {"rules.alarms[0].point", "rules.linkage[0].trigger"}
    point = by_path["rules.alarms[0].point"]
    assert isinstance(point["line"], int) and isinstance(point["column"], int)
    assert lines[point["line"] - 1][point["column"] - 1 :].startswith("water-tank-a.nope")
    trigger = by_path["rules.linkage[0].trigger"]
    assert isinstance(trigger["line"], int) and isinstance(trigger["column"], int)
    # line:col of the unknown function inside the expression
    assert lines[trigger["line"] - 1][trigger["column"] - 1 :].startswith("tank(1)"), trigger
    assert "tank" in str(trigger["message"])


def test_check_reports_a_wrong_rule_field_at_its_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, lines = _demo_with_rules(
        tmp_path,
        "rules:\n"
        "  linkage:\n"
        "    - id: bad\n"
        '      trigger: alarm("fire-panel.zone2_fire")\n'
        "      steps:\n"
        "        - {write: door-t2-stair.release, value: true, retries: 99}\n",
    )
    by_path = _problems(path, capsys)
    retries = by_path["rules.linkage[0].steps[0].retries"]
    assert isinstance(retries["line"], int) and isinstance(retries["column"], int)
    assert lines[retries["line"] - 1][retries["column"] - 1 :].startswith("99")


def test_check_places_a_profile_alarm_mistake_in_the_profile_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    source = (ROOT / "config" / "profiles" / "access-door.yaml").read_text(encoding="utf-8")
    (profiles / "access-door.yaml").write_text(
        source.replace(
            "kind: state, when: true, latched: true, priority: high", "kind: state, priority: urgent"
        ),
        encoding="utf-8",
    )
    site = tmp_path / "site.yaml"
    site.write_text(
        f"site: {{id: s}}\ngateway: {{id: g, data_dir: {tmp_path}}}\n"
        "buses: [{id: b, type: modbus_tcp, host: 127.0.0.1, port: 1502}]\n"
        "devices: [{id: door, bus: b, unit: 1, profile: access-door}]\n",
        encoding="utf-8",
    )
    assert main(["check", str(site), "--profiles", str(profiles), "--json"]) == 1
    (problem,) = json.loads(capsys.readouterr().out)["problems"]
    assert problem["file"] == str(profiles / "access-door.yaml")
    assert problem["path"].endswith(".alarms[0].priority")
    line = (profiles / "access-door.yaml").read_text(encoding="utf-8").splitlines()[problem["line"] - 1]
    assert "urgent" in line


def test_check_points_into_quoted_and_block_scalar_expressions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        f"site: {{id: s}}\ngateway: {{id: g, data_dir: {tmp_path}}}\n"
        "buses: [{id: b, type: modbus_tcp, host: 127.0.0.1, port: 1502}]\n"
        "devices: [{id: door, bus: b, unit: 1, profile: access-door}]\n"
        "rules:\n"
        "  linkage:\n"
        "    - id: block\n"
        "      trigger: |\n"
        "        alarm(door.forced_open)\n"
        "          and door.held_open == tru\n"
        "      steps: [{write: door.release, value: true}]\n"
        "    - id: quoted\n"
        '      trigger: "door.locked == false and nope(1)"\n'
        "      steps: [{write: door.release, value: true}]\n",
        encoding="utf-8",
    )
    lines = site.read_text(encoding="utf-8").splitlines()
    by_path = _problems(site, capsys)
    block = by_path["rules.linkage[0].trigger"]
    quoted = by_path["rules.linkage[1].trigger"]
    for problem, token in ((block, "tru"), (quoted, "nope(1)")):
        line, column = problem["line"], problem["column"]
        assert isinstance(line, int) and isinstance(column, int)
        assert lines[line - 1][column - 1 :].startswith(token), (problem, lines[line - 1])
