"""The dashboard: section is validated with located, field-named errors."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from core.errors import ConfigError
from edge.dashboard import DashboardConfig, DashboardError, check_dashboard, dashboard_config, enter_dashboard
from tests.unit.dashboard.fakes import make_gateway


def _messages(raw: object, tmp_path: Path) -> list[str]:
    from edge.config.loader import format_loc

    return [f"{format_loc(i.loc)}: {i.message}" for i in check_dashboard(raw, base_dir=tmp_path)]


def test_defaults_are_valid(tmp_path: Path) -> None:
    assert check_dashboard({"listen": "127.0.0.1:8080"}, base_dir=tmp_path) == []
    assert check_dashboard(None, base_dir=tmp_path) == []


def test_https_by_default_http_only_when_the_site_file_says_so(tmp_path: Path) -> None:
    # On the network (the default listen 0.0.0.0:8080) the dashboard needs its certificate ...
    (problem,) = _messages({}, tmp_path)
    assert problem.startswith("dashboard: the dashboard serves HTTPS on 0.0.0.0:8080")
    assert "gatehouse certs dashboard" in problem and "tls: off" in problem
    (problem,) = _messages({"listen": "10.1.2.3:8443"}, tmp_path)
    assert problem.startswith("dashboard.listen: ")
    # ... plain HTTP only when the file says so ("off" as YAML 1.2 leaves it, or false)
    for off in ("off", False, "no"):
        config = dashboard_config_of({"tls": off}, tmp_path)
        assert config.tls is False and not config.https
    assert any(p.startswith("dashboard.tls: ") for p in _messages({"tls": "on"}, tmp_path))
    (tmp_path / "d.crt").write_text("x")
    (tmp_path / "d.key").write_text("x")
    config = dashboard_config_of({"tls_cert": "d.crt", "tls_key": "d.key"}, tmp_path)
    assert config.https and config.tls_cert == str(tmp_path / "d.crt")
    assert any(
        "tls: off" in p for p in _messages({"tls": False, "tls_cert": "d.crt", "tls_key": "d.key"}, tmp_path)
    )
    # loopback: no other host can listen in, so HTTP unless a certificate is given
    for host in ("127.0.0.1", "[::1]", "localhost"):
        assert not dashboard_config_of({"listen": f"{host}:8080"}, tmp_path).https


def dashboard_config_of(raw: dict[str, object], tmp_path: Path) -> DashboardConfig:
    assert check_dashboard(raw, base_dir=tmp_path) == []
    data = {
        k: (str(tmp_path / v) if k.startswith("tls_") and isinstance(v, str) else v) for k, v in raw.items()
    }
    return DashboardConfig.model_validate(data)


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
