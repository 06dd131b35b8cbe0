"""`gatehouse check` through ``edge.cli.main``: output format and exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cli import main

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config" / "examples" / "minimal-site.yaml"
BAD = ROOT / "tests" / "fixtures" / "sites" / "bad"
GOOD = ROOT / "tests" / "fixtures" / "sites" / "good"


def test_clean_site_exits_0_with_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out == "ok: site estate-a, 3 devices, 32 points\n"


def test_problems_are_printed_one_per_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    site = BAD / "many-mistakes.yaml"
    assert main(["check", str(site)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "4 problems"
    assert lines[0] == f"{site}:14:13: buses[0].parity: Input should be 'N', 'E' or 'O' (got 'X')"
    assert [line.split(": ")[0].rsplit(":", 2)[1:] for line in lines[:-1]] == [
        ["14", "13"],
        ["19", "11"],
        ["22", "10"],
        ["27", "9"],
    ]


def test_single_problem_summary_is_singular(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(BAD / "unknown-bus.yaml")]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "1 problem"


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "absent.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().out


def test_a_folder_is_unreadable_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path)]) == 2
    capsys.readouterr()


def test_json_output_for_problems(capsys: pytest.CaptureFixture[str]) -> None:
    site = BAD / "broken-local-profile.yaml"
    assert main(["check", "--json", str(site)]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is False
    (problem,) = payload["problems"]
    assert Path(problem["file"]) == BAD / "profiles" / "acme-pump.yaml"
    assert (problem["line"], problem["column"], problem["path"]) == (10, 14, "points[1].address")


def test_json_output_for_a_clean_site(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(GOOD / "pump-room.yaml"), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload == {
        "ok": True,
        "site": "estate-g",
        "devices": 4,
        "points": 40,
        "profiles": ["chint-dtsu666", "eastron-sdm630"],
        "problems": [],
    }


def test_profiles_option_adds_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        "site: {id: s}\ngateway: {id: g}\nbuses: [{id: b, type: modbus_tcp, host: h}]\n"
        "devices: [{id: d, bus: b, profile: acme-valve}]\n",
        encoding="utf-8",
    )
    assert main(["check", str(site)]) == 1
    assert "unknown profile 'acme-valve'" in capsys.readouterr().out
    folder = tmp_path / "vendor"
    folder.mkdir()
    (folder / "acme-valve.yml").write_text(
        "id: acme-valve\nname: Valve\nfamily: valve\nsource: typical\npoints: [{id: open, address: 0}]\n",
        encoding="utf-8",
    )
    assert main(["check", str(site), "--profiles", str(folder)]) == 0
    assert capsys.readouterr().out == "ok: site s, 1 devices, 1 points\n"
