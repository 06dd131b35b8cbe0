"""CSV export/import of buses, devices and points: lossless round trip, located errors, encodings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from edge.cli import main
from edge.site_io import columns

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "config" / "examples" / "demo-estate.yaml"


def _safe(path: Path) -> object:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    target = tmp_path / "site.yaml"
    shutil.copyfile(DEMO, target)
    return target


def _export(site: Path, out: Path) -> bytes:
    assert main(["export", "devices", str(site), "--output", str(out)]) == 0
    return out.read_bytes()


def test_round_trip_of_the_demo_estate_is_identical(site: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "devices.csv"
    raw = _export(site, sheet)
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads the BOM as UTF-8
    before = _safe(site)
    target = tmp_path / "empty.yaml"
    text = site.read_text(encoding="utf-8")
    target.write_text(text)
    assert main(["import", str(sheet), "--into", str(target)]) == 0
    after = _safe(target)
    assert isinstance(before, dict) and isinstance(after, dict)
    assert after["buses"] == before["buses"]
    assert after["devices"] == before["devices"]
    assert {k: v for k, v in after.items() if k not in ("buses", "devices")} == {
        k: v for k, v in before.items() if k not in ("buses", "devices")
    }
    # comments outside buses/devices survive
    assert "# " in target.read_text(encoding="utf-8").split("buses:")[0]
    # and exporting again gives the same sheet, byte for byte
    assert _export(target, tmp_path / "again.csv") == raw


def test_gb18030_and_utf8_without_bom_are_read(site: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "devices.csv"
    text = _export(site, sheet).decode("utf-8-sig")
    assert "二次供水" in text
    for encoding in ("gb18030", "utf-8"):
        other = tmp_path / f"{encoding}.csv"
        other.write_bytes(text.encode(encoding))
        target = tmp_path / f"{encoding}.yaml"
        shutil.copyfile(site, target)
        assert main(["import", str(other), "--into", str(target)]) == 0
        assert _safe(target) == _safe(site)


def test_columns_come_from_the_driver_registry() -> None:
    # Modbus, BACnet and OPC UA device keys and serial bus keys, none named in edge/site_io.py
    assert {"unit", "instance", "namespace", "baudrate", "parity", "endpoint"} <= set(columns())
    assert '"unit"' not in (ROOT / "edge" / "site_io.py").read_text()


def test_template_imports(tmp_path: Path) -> None:
    target = tmp_path / "site.yaml"
    target.write_text("site: {id: t}\ngateway: {id: gw-t, data_dir: data}\n")
    template = ROOT / "config" / "templates" / "devices.csv"
    assert main(["import", str(template), "--into", str(target), "--dry-run"]) == 0


HEADER = "kind,id,bus,device,type,host,port,unit,profile,poll_interval_s,name_zh,scale"
BUS = "bus,lan,,,modbus_tcp,127.0.0.1,1502,,,,,"
DEV = "device,m1,lan,,,,,1,eastron-sdm630,5,电表,"

MALFORMED = {
    "unknown kind": ([HEADER, BUS, "gadget,x,,,,,,,,,,"], 3, "kind"),
    "missing id": ([HEADER, BUS, "device,,lan,,,,,1,eastron-sdm630,,,"], 3, "id"),
    "unknown bus type": ([HEADER, "bus,lan,,,carrier_pigeon,,,,,,,", DEV], 2, "type"),
    "device on an unknown bus": ([HEADER, BUS, "device,m1,nowhere,,,,,1,eastron-sdm630,,,"], 3, "bus"),
    "point of an unknown device": ([HEADER, BUS, DEV, "point,p,,ghost,,,,,,,,2"], 4, "device"),
    "duplicate device": ([HEADER, BUS, DEV, DEV], 4, "id"),
    "unit not a number": ([HEADER, BUS, "device,m1,lan,,,,,one,eastron-sdm630,,,"], 3, "unit"),
    "unit out of range": ([HEADER, BUS, "device,m1,lan,,,,,300,eastron-sdm630,,,"], 3, "unit"),
    "bad poll interval": ([HEADER, BUS, "device,m1,lan,,,,,1,eastron-sdm630,-5,,"], 3, "poll_interval_s"),
    "unknown profile": ([HEADER, BUS, "device,m1,lan,,,,,1,no-such-profile,,,"], 3, "profile"),
    "key of another model": ([HEADER, "bus,lan,,,modbus_tcp,127.0.0.1,1502,7,,,,"], 2, "unit"),
    "bad JSON": ([HEADER, BUS, "device,m1,lan,,,,,[1,eastron-sdm630,,,"], 3, "unit"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_sheets_name_row_and_column(
    case: str, site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines, row, column = MALFORMED[case]
    sheet = tmp_path / "bad.csv"
    sheet.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    before = site.read_bytes()
    assert main(["import", str(sheet), "--into", str(site)]) == 1
    err = capsys.readouterr().err
    assert f"{sheet}:{row}:{column}: " in err, err
    assert site.read_bytes() == before  # nothing written
