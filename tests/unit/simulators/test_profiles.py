"""Every profile validates (pydantic model and the gateway's loader), has a model, and carries
its source and sane default alarms; the simulator reads the same map as the gateway."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from drivers.config_base import ProfileBase
from drivers.modbus.config import ModbusProfile
from edge.config.loader import load_profile
from simulators.models import MODELS, make_model
from simulators.profile import PROFILE_DIR, load_profile_file
from simulators.scenarios import family_catalogue

ALL_PROFILES = sorted(PROFILE_DIR.glob("*.yaml"))
# The register-map simulator serves Modbus profiles; other protocols' simulators test their own.
PROFILES = [
    p
    for p in ALL_PROFILES
    if YAML(typ="safe").load(p.read_text("utf-8")).get("protocol", "modbus") == "modbus"
]
KINDS = {"high", "high_high", "low", "low_low", "state", "enum", "stale"}
PRIORITIES = {"fire", "fault", "supervisory", "high", "medium", "low"}
FAMILIES_REQUIRED = {
    "fire_panel",
    "fire_water",
    "water_tank",
    "meter",
    "water_meter",
    "gas_meter",
    "heat_meter",
    "manhole",
    "ev_charger",
    "elevator",
    "access_door",
    "barrier",
    "evacuation_lighting",
    "smoke_fan",
    "broadcast",
    "electrical_fire",
    "fire_lane",
    "switch_room",
}


def test_every_family_has_a_profile() -> None:
    families = {load_profile_file(p).family for p in PROFILES}
    assert families >= FAMILIES_REQUIRED


@pytest.mark.parametrize("path", ALL_PROFILES, ids=lambda p: p.stem)
def test_every_bundled_profile_loads(path: Path) -> None:
    config = load_profile(path, expect_id=path.stem)
    assert isinstance(config, ProfileBase)
    assert config.source.strip() and config.points


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_profile_validates_and_matches_the_simulator_reading(path: Path) -> None:
    config = load_profile(path, expect_id=path.stem)
    assert isinstance(config, ModbusProfile)
    assert config.source.strip()
    sim = load_profile_file(path)
    assert sim.family in MODELS, f"no behaviour model for family {sim.family}"
    assert [p.id for p in sim.points] == [p.id for p in config.points]
    for mine, theirs in zip(sim.points, config.points, strict=True):
        assert (mine.table, mine.address, mine.type, mine.order, mine.bit, mine.length) == (
            theirs.table,
            theirs.address,
            theirs.type,
            theirs.order,
            theirs.bit,
            theirs.length,
        )
        assert (mine.scale, mine.offset, mine.access) == (theirs.scale, theirs.offset, theirs.access.value)
    model_values = make_model(sim.family).values()
    missing = [p.id for p in sim.points if p.id not in model_values]
    assert not missing, f"the {sim.family} model gives no value for {missing}"


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_default_alarms_have_the_agreed_shape(path: Path) -> None:
    config = load_profile(path, expect_id=path.stem)
    for point in config.points:
        ids = [a["id"] for a in point.alarms]
        assert len(ids) == len(set(ids)), point.id
        for alarm in point.alarms:
            assert alarm["kind"] in KINDS, (point.id, alarm)
            assert alarm["priority"] in PRIORITIES, (point.id, alarm)
            assert {"zh", "en"} <= set(alarm["message"]), (point.id, alarm)
            if alarm["kind"] in {"high", "high_high", "low", "low_low"}:
                assert isinstance(alarm["setpoint"], int | float)
            if alarm["kind"] == "state":
                assert isinstance(alarm["when"], bool)
            if alarm["kind"] == "enum":
                assert point.enum is not None
                assert set(alarm["codes"]) <= set(point.enum), point.id
                for spec in alarm["codes"].values():
                    assert spec["priority"] in PRIORITIES


def test_scenarios_are_listed_for_every_family() -> None:
    for family in MODELS:
        catalogue = family_catalogue(family)
        assert {"comm_loss", "slow", "exception", "garbage"} <= set(catalogue)
        assert all(text for text in catalogue.values())
