"""Central's own YAML is reported the way a site file is: ``file:line:col: field: message``."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_sync.central.config import CentralConfigError, load_central_config


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "central.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CentralConfigError) as caught:
        load_central_config(path)
    return str(caught.value).replace(f"{path}:", "central.yaml:").splitlines()


def test_each_problem_names_its_line_column_and_field(tmp_path: Path) -> None:
    text = "database: ftp://nowhere\nsigning_key: central.key\napi: {tokens: []}\nlisten_port: 8080\n"
    errors = _errors(tmp_path, text)
    assert "central.yaml:4:1: listen_port: Extra inputs are not permitted" in errors
    assert any(e.startswith("central.yaml:1:11: database: ") for e in errors), errors


def test_a_missing_section_points_at_the_mapping_that_lacks_it(tmp_path: Path) -> None:
    errors = _errors(tmp_path, "database: central.db\n")
    assert "central.yaml:1:1: signing_key: Field required" in errors


def test_broken_yaml_is_located_not_raised(tmp_path: Path) -> None:
    assert _errors(tmp_path, "database: central.db\nretention_days: -_\n") == [
        "central.yaml:2:17: (syntax): not valid YAML: '-_' looks like a number but is not one;"
        " put it in quotes if it is text"
    ]
    assert _errors(tmp_path, "database: [central.db\n")[0].startswith("central.yaml:")


def test_an_unreadable_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(CentralConfigError, match="cannot read"):
        load_central_config(tmp_path / "absent.yaml")
