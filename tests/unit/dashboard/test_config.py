"""The dashboard: section is validated with located, field-named errors."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from core.errors import ConfigError
from edge.dashboard import DashboardError, check_dashboard, dashboard_config, enter_dashboard
from tests.unit.dashboard.fakes import make_gateway


def _messages(raw: object, tmp_path: Path) -> list[str]:
    from edge.config.loader import format_loc

    return [f"{format_loc(i.loc)}: {i.message}" for i in check_dashboard(raw, base_dir=tmp_path)]


def test_defaults_are_valid(tmp_path: Path) -> None:
    assert check_dashboard({}, base_dir=tmp_path) == []
    assert check_dashboard(None, base_dir=tmp_path) == []


def test_errors_name_the_field(tmp_path: Path) -> None:
    problems = _messages({"listen": "8080", "history_days": 0, "colour": "red"}, tmp_path)
    assert any(p.startswith("dashboard.listen: ") and "host:port" in p for p in problems)
    assert any(p.startswith("dashboard.history_days: ") for p in problems)
    assert any(p.startswith("dashboard.colour") for p in problems)
    assert _messages(["listen"], tmp_path) == ["dashboard: expected a mapping of 'key: value' entries"]


def test_tls_needs_both_files_and_they_must_exist(tmp_path: Path) -> None:
    assert any("together" in p for p in _messages({"tls_cert": "a.crt"}, tmp_path))
    problems = _messages({"tls_cert": "a.crt", "tls_key": "a.key"}, tmp_path)
    assert problems[0].startswith("dashboard.tls_cert: file ") and problems[0].endswith(
        "a.crt does not exist"
    )


def test_config_error_is_located_in_the_site_file(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path, {"listen": "127.0.0.1:0"})
    with pytest.raises(ConfigError) as caught:
        dashboard_config({"listen": "nope", "simulator_api": "ftp://x"}, gw.site)
    text = str(caught.value)
    assert "site.yaml:" in text and "dashboard.listen" in text and "dashboard.simulator_api" in text


async def test_a_port_in_use_is_an_error_not_an_exit(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    assert gw.site.config.dashboard is not None
    async with AsyncExitStack() as stack:
        first = await enter_dashboard(stack, gw.site.config.dashboard, gateway=gw)
        with pytest.raises(DashboardError, match="cannot listen"):
            async with AsyncExitStack() as other:
                await enter_dashboard(other, {"listen": f"127.0.0.1:{first.port}"}, gateway=gw)


def test_the_site_loader_reports_dashboard_mistakes_with_their_position(tmp_path: Path) -> None:
    from edge.config.loader import load_site
    from tests.unit.dashboard.fakes import write_site

    path = write_site(tmp_path, {"listen": "127.0.0.1:0", "session_timeout_min": 0})
    with pytest.raises(ConfigError) as caught:
        load_site(path)
    [problem] = caught.value.problems
    assert problem.path == "dashboard.session_timeout_min" and problem.line > 1
