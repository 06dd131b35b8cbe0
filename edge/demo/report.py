"""What `make demo` prints once everything is up: where to look and what to try."""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from cloud_sync.central.console.context import SETUP_CODE_FILE as CONSOLE_CODE_FILE
from cloud_sync.webauth.setup_code import read_setup_code as read_code_file
from edge.demo.layout import DemoPaths, DemoPorts

__all__ = ["DemoSummary", "gatehouse_command", "render_summary"]


def gatehouse_command() -> str:
    """How to call the CLI from this checkout (the venv's console script when there is one)."""
    script = Path(sys.executable).parent / "gatehouse"
    if script.exists():
        return _short(script)
    return f"{shlex.quote(sys.executable)} -m edge"


def _short(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (shorter to copy)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@dataclass(frozen=True, slots=True)
class DemoSummary:
    paths: DemoPaths
    ports: DemoPorts
    site_id: str
    gateway_id: str
    devices: int
    points_at_central: int
    token: str
    dashboard: bool
    reused_credentials: bool
    fire_device: str | None  # a fire panel of the site, for the "inject a fire" example


def render_summary(s: DemoSummary) -> str:
    gh = gatehouse_command()
    central = f"http://127.0.0.1:{s.ports.central}"
    control = f"http://127.0.0.1:{s.ports.control}"
    auth = f'-H "Authorization: Bearer {s.token}"'
    data = _short(s.paths.root)
    control_opt = "" if s.ports.control == 8470 else f" --control {control}"
    lines = [
        "",
        f"Gatehouse demo is running: site {s.site_id}, gateway {s.gateway_id},",
        f"{s.devices} simulated devices; central already holds {s.points_at_central} points.",
        "",
    ]
    if s.dashboard:
        from edge.dashboard.setup_code import read_setup_code

        code = read_setup_code(s.paths.gateway)
        lines += [f"  LAN dashboard     http://127.0.0.1:{s.ports.dashboard}/"]
        if code is not None:
            lines += [
                f"                    first visit: create the administrator with the setup code {code}",
                "                    (no default password; the code is also in gateway/dashboard-setup-code)",
            ]
        else:
            lines += ["                    sign in with the administrator account made on an earlier run"]
    else:
        lines += ["  LAN dashboard     off (--no-dashboard, or not part of this build)"]
    # Beside central.db with SQLite; beside central's signing key (pki/) with PostgreSQL.
    console_code = read_code_file(s.paths.central, file_name=CONSOLE_CODE_FILE) or read_code_file(
        s.paths.pki, file_name=CONSOLE_CODE_FILE
    )
    lines += [f"  Central dashboard {central}/console/"]
    if console_code is not None:
        lines += [
            f"                    first visit: create the platform admin with the setup code {console_code}",
            f"                    (no default password; the code is also in {CONSOLE_CODE_FILE})",
        ]
    else:
        lines += ["                    sign in with the platform administrator made on an earlier run"]
    lines += [
        f"  Central REST API  {central}/api/v1/   token: {s.token}",
        f"  OpenAPI docs      {central}/docs   (contract: {central}/openapi.json)",
        f"                    curl {auth} {central}/api/v1/gateways",
        f"                    curl {auth} '{central}/api/v1/points?limit=5'",
        f"  MQTT broker       127.0.0.1:{s.ports.broker}, TLS only (CA {data}/pki/ca.crt),"
        f" gateway user {s.gateway_id}",
        f"  Simulators        control API {control}   ({gh} simulate list{control_opt})",
        "",
    ]
    if s.fire_device is not None:
        panel = s.fire_device
        lines += [
            f"Inject a fire alarm ({panel}, zone 1; inject again for a second detector):",
            f"  {gh} simulate inject fire --device {panel} --zone 1{control_opt}",
            f"  curl -X POST -H 'Content-Type: application/json' -d '{{\"zone\": 1}}' "
            f"{control}/devices/{panel}/scenarios/fire",
            f"  then: curl {auth} '{central}/api/v1/events?kind=alarm.raised'",
            f"  end it: {gh} simulate clear --device {panel}{control_opt}",
        ]
    else:
        lines += [f"Scenarios to inject: {gh} simulate list --scenarios{control_opt}"]
    lines += [
        "",
        f"Logs (JSON lines): {data}/logs/  gateway.log central.log simulators.log broker.log",
        f"Data: {data}/  (site.yaml, central/central.yaml, pki/; credentials are "
        + ("reused from an earlier run)" if s.reused_credentials else "kept for the next run)"),
        "Press Ctrl-C to stop everything.",
        "",
    ]
    return "\n".join(lines) + os.linesep
