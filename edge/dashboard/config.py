"""The site file's ``dashboard:`` section: validated here, by its owner.

The site loader keeps ``dashboard:`` as a raw mapping (``edge.config.models.SiteConfig``), like
``uplink:``. :func:`check_dashboard` returns located ``Issue``s (``dashboard.listen: ...``) and
:func:`dashboard_config` raises a ``ConfigError`` positioned in the site file, so a mistake reads
like every other one: ``site.yaml:40:11: dashboard.listen: ...``.

Example::

    dashboard:
      listen: 0.0.0.0:8080
      db: dashboard.db            # relative to gateway.data_dir
      session_timeout_min: 30
      history_days: 7
      tls_cert: pki/dashboard.crt # relative to the site file's folder (gatehouse certs dashboard)
      tls_key: pki/dashboard.key
      # tls: off                  # plain HTTP on the network: only when the site file says so
      simulator_api: http://127.0.0.1:8470
      metrics_token_file: pki/metrics.token   # /metrics for a bearer token (Prometheus)
      metrics_allow: [127.0.0.1/32, 10.1.0.0/24]  # ... or for these peers (default: loopback)
      deleted_history_days: 180               # history of devices deleted on the dashboard
      max_body_bytes: 1048576                 # larger request bodies are 413 before parsing
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import ConfigError, ConfigProblem
from core.yaml_doc import format_loc, read_yaml
from edge.config.checks import Issue, issues_from_validation
from edge.config.site import Site

__all__ = ["DashboardConfig", "check_dashboard", "dashboard_config", "is_loopback"]

_LOC = ("dashboard",)


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DashboardConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = Field(default="0.0.0.0:8080", description="host:port the dashboard listens on")
    db: str = Field(
        default="dashboard.db", description="users, sessions, audit, trends; relative to data_dir"
    )
    session_timeout_min: int = Field(default=30, ge=1, le=7 * 24 * 60, description="default for new users")
    max_login_attempts: int = Field(default=3, ge=1, le=20, description="default for new users")
    # 0 keeps a locked account locked until an administrator unlocks it.
    lockout_min: float = Field(default=15.0, ge=0, le=7 * 24 * 60)
    history_days: float = Field(default=7.0, gt=0, le=366)
    audit_days: float = Field(default=365.0, ge=30, le=3660, description="audit log kept this long")
    history_interval_s: float = Field(default=10.0, ge=1, le=3600, description="trend bucket width")
    values_interval_s: float = Field(default=0.5, ge=0.5, le=60, description="SSE value coalescing")
    client_queue: int = Field(default=512, ge=16, le=100_000, description="SSE events buffered per client")
    # The browser declares the gateway unreachable after three missed heartbeats (15 s by
    # default), well inside GB 4717's 100 s for showing a loss of communication.
    heartbeat_s: float = Field(default=5.0, ge=0.5, le=30, description="SSE heartbeat interval")
    # HTTPS from the site CA (``gatehouse certs dashboard``) unless this says ``off``. Left out,
    # HTTPS is required on the network and optional on loopback, which no other host can reach.
    tls: bool | None = Field(default=None, description="serve HTTPS (default: yes, unless on loopback)")
    tls_cert: str | None = None
    tls_key: str | None = None
    simulator_api: str | None = Field(default=None, description="simulator control API base URL")
    # /metrics: a bearer token read from this file (relative to the site file's folder), or a
    # peer address in one of these networks. /healthz needs neither.
    metrics_token_file: str | None = None
    metrics_allow: list[str] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"], description="networks allowed to scrape /metrics"
    )
    # Request bodies over this are refused with 413 before anything parses them (login and
    # setup: 16 KiB at most); 1 MiB holds a batch of 10,000 device ids.
    max_body_bytes: int = Field(default=1024 * 1024, ge=16 * 1024, le=64 * 1024 * 1024)
    # Batch device management: a deleted device's history (trends, alarm history) is kept this long.
    deleted_history_days: float = Field(default=180.0, ge=1, le=3660)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("expected host:port, e.g. 0.0.0.0:8080")
        return value

    @field_validator("metrics_allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(f"{net!r} is not a network, e.g. 10.0.0.0/8 or 127.0.0.1/32") from exc
        return value

    @field_validator("simulator_api")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("expected an http(s) URL, e.g. http://127.0.0.1:8470")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _tls_pair(self) -> DashboardConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both or neither")
        if self.tls is False and self.tls_cert is not None:
            raise ValueError("tls: off and a tls_cert: drop the certificate, or tls: off")
        return self

    @property
    def host(self) -> str:
        host = self.listen.rpartition(":")[0]
        return host.strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def https(self) -> bool:
        """The dashboard serves HTTPS (with ``tls_cert``/``tls_key``)."""
        return self.tls is not False and self.tls_cert is not None

    @property
    def needs_certificate(self) -> bool:
        """HTTPS is required but no certificate is given (a ``check_dashboard`` issue)."""
        wanted = self.tls is True or (self.tls is None and not is_loopback(self.host))
        return wanted and self.tls_cert is None


def _with_paths(raw: Mapping[str, Any], base_dir: Path) -> dict[str, Any]:
    data = dict(raw)
    for key in ("tls_cert", "tls_key", "metrics_token_file"):
        value = data.get(key)
        if isinstance(value, str) and value:
            data[key] = str(base_dir / value)  # an absolute value stays absolute
    return data


def check_dashboard(raw: Any, *, base_dir: Path) -> list[Issue]:
    """Every problem of a ``dashboard:`` section (None when there is none), as located issues."""
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return [Issue(_LOC, "expected a mapping of 'key: value' entries")]
    data = _with_paths(raw, base_dir)
    try:
        config = DashboardConfig.model_validate(data)
    except ValidationError as exc:
        return issues_from_validation(exc, data, DashboardConfig, prefix=_LOC)
    issues: list[Issue] = []
    if config.needs_certificate:
        where = "tls" if "tls" in data else "listen" if "listen" in data else None
        issues.append(
            Issue(
                (*_LOC, where) if where else _LOC,
                f"the dashboard serves HTTPS on {config.listen}: give tls_cert and tls_key (issue them with"
                " `gatehouse certs dashboard --dir PKI GATEWAY_ID --host NAME`), or set tls: off to serve"
                " plain HTTP (passwords then cross the network readable)",
            )
        )
    for key in ("tls_cert", "tls_key", "metrics_token_file"):
        path = getattr(config, key)
        if path is not None and not Path(path).is_file():
            issues.append(Issue((*_LOC, key), f"file {path} does not exist"))
    return issues


def dashboard_config(raw: Mapping[str, Any], site: Site) -> DashboardConfig:
    """The validated config with file paths made absolute; raises ``ConfigError`` located in the file."""
    base_dir = site.path.parent
    issues = check_dashboard(raw, base_dir=base_dir)
    if issues:
        raise ConfigError(locate(issues, site.path))
    return DashboardConfig.model_validate(_with_paths(raw, base_dir))


def locate(issues: list[Issue], path: Path) -> list[ConfigProblem]:
    try:
        doc = read_yaml(path)
    except (OSError, ConfigError):
        return [ConfigProblem(str(path), 1, 1, format_loc(i.loc), i.message) for i in issues]
    return [doc.problem(i) for i in issues]
