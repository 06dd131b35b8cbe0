"""``load_site(only_devices=...)``, the poll worker's load: its devices, exactly as the gateway
resolves them, without the sections (and the imports) only the gateway needs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ConfigError
from edge.config.loader import load_site

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "config" / "examples" / "demo-estate.yaml"

SITE = """\
site: {id: estate-t}
gateway: {id: gw-t, data_dir: state}
uplink: {no_such_key: 1}
buses: [{id: lan, type: modbus_tcp, host: 127.0.0.1, port: 502}]
devices:
  - {id: m1, bus: lan, unit: 1, profile: eastron-sdm630}
  - {id: m2, bus: lan, unit: 2, profile: eastron-sdm630, bogus: 1}
"""


def test_the_worker_gets_its_devices_exactly_as_the_gateway_resolves_them() -> None:
    full = load_site(DEMO)
    chosen = {full.devices[0].id, full.devices[-1].id}
    part = load_site(DEMO, only_devices=chosen)
    assert {d.id for d in part.devices} == chosen
    assert list(part.devices) == [d for d in full.devices if d.id in chosen]
    assert [b.id for b in part.config.buses] == [b.id for b in full.config.buses]


def test_sections_the_worker_does_not_run_are_left_to_the_gateway(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(SITE, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_site(path)
    said = [str(p) for p in caught.value.problems]
    assert any(":3:10: uplink.no_such_key" in s for s in said)
    assert any(":7:58: devices[1].bogus" in s for s in said)

    assert [d.id for d in load_site(path, only_devices={"m1"}).devices] == ["m1"]
    with pytest.raises(ConfigError) as caught:
        load_site(path, only_devices={"m2"})
    # A device of its own is still checked, at its place in the file.
    assert [str(p) for p in caught.value.problems] == [s for s in said if "devices[1].bogus" in s]


def test_the_worker_load_does_not_import_what_only_the_gateway_uses() -> None:
    code = f"""
import json, sys
from pathlib import Path
from edge.config.loader import load_site
site = load_site(Path({str(DEMO)!r}), only_devices={{"fire-panel"}})
heavy = ("cryptography", "rules", "paho", "fastapi", "cloud_sync")
print(json.dumps([len(site.devices), sorted(m for m in heavy if m in sys.modules)]))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    devices, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert heavy == []
    assert devices == 1
