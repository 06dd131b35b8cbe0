"""The device profiles' default alarms are valid alarm definitions (the contract between the
profile files and the rules package)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from rules.compiled import PointRules, compile_rules

PROFILES = sorted((Path(__file__).resolve().parents[3] / "config" / "profiles").glob("*.yaml"))


def test_there_are_profiles_with_alarms() -> None:
    assert any("alarms:" in p.read_text(encoding="utf-8") for p in PROFILES)


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_profile_alarms_compile(path: Path) -> None:
    profile = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    points = [
        PointRules(f"site/dev/{p['id']}", p.get("zone"), p.get("alarms") or [])
        for p in profile.get("points", [])
    ]
    compiled = compile_rules("site", points)
    assert len(compiled.alarms) >= sum(len(p.alarms) for p in points if p.alarms) - sum(
        1 for p in points for a in p.alarms if a.get("enabled") is False
    )
