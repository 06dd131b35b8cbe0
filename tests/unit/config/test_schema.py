"""The committed JSON Schemas equal what the models generate, and describe the real files."""

from __future__ import annotations

import json
from pathlib import Path

from edge.config.schema import SCHEMAS, main, render

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / "config" / "schema"


def test_committed_schemas_are_up_to_date() -> None:
    for name, (model, title) in SCHEMAS.items():
        committed = (COMMITTED / name).read_text(encoding="utf-8")
        assert committed == render(model, title), (
            f"config/schema/{name} is stale: run `python -m edge.config.schema config/schema`"
        )


def test_main_writes_both_files(tmp_path: Path) -> None:
    assert main([str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["profile.schema.json", "site.schema.json"]


def test_main_needs_one_argument() -> None:
    assert main([]) == 2


def test_site_schema_forbids_unknown_keys_and_knows_every_section() -> None:
    schema = json.loads((COMMITTED / "site.schema.json").read_text(encoding="utf-8"))
    assert schema["additionalProperties"] is False
    assert {"site", "gateway", "outbox", "profile_dirs", "buses", "devices"} <= set(schema["properties"])
    assert schema["required"] == ["site", "gateway"]
    for definition in ("ModbusDeviceConfig", "ModbusPointPatch", "ModbusTcpBus", "ModbusRtuBus"):
        assert schema["$defs"][definition]["additionalProperties"] is False


def test_bundled_example_and_profiles_point_editors_at_the_schema() -> None:
    example = (ROOT / "config" / "examples" / "minimal-site.yaml").read_text(encoding="utf-8")
    assert example.startswith("# yaml-language-server: $schema=../schema/site.schema.json")
    for name in ("eastron-sdm630", "chint-dtsu666"):
        text = (ROOT / "config" / "profiles" / f"{name}.yaml").read_text(encoding="utf-8")
        assert text.startswith("# yaml-language-server: $schema=../schema/profile.schema.json")
