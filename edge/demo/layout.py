"""Where `make demo` keeps its files and which ports its parts listen on.

Everything lives under one folder (``./demo-data/`` by default, git-ignored)::

    demo-data/site.yaml              the derived site file the gateway runs (demo estate + uplink
                                     + dashboard); regenerated on every start
    demo-data/pki/                   private CA, broker certificate, per-client credentials and the
                                     gateway's Ed25519 signing key (cloud_sync.certs layout); kept
    demo-data/broker/                rendered mosquitto.conf, acl, persistence, mosquitto.log
    demo-data/central/               central.yaml, api-token, central.db
    demo-data/gateway/               the gateway's data_dir: outbox.db, dashboard.db
    demo-data/logs/                  one log per child process (JSON lines)

Ports are fixed and documented by default, so the printed URLs are the same on every run;
``--ports BASE`` moves every port of the demo (including the simulated Modbus endpoints) to a
block starting at BASE, and ``--ports auto`` picks free ports (used by the tests).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from core import ports

__all__ = [
    "DEFAULT_PORTS",
    "DemoPaths",
    "DemoPorts",
    "PortSpecError",
    "busy_ports",
    "parse_port_spec",
    "plan_ports",
]

_LOG = structlog.get_logger(__name__)


class PortSpecError(ValueError):
    """``--ports`` is neither ``auto`` nor a usable base port."""


@dataclass(frozen=True, slots=True)
class DemoPorts:
    broker: int  # MQTT over TLS
    central: int  # central's REST API (plain HTTP on 127.0.0.1)
    dashboard: int  # the gateway's LAN dashboard
    control: int  # the simulators' control API
    # Modbus TCP endpoints (host, port) of the site file -> the loopback port the demo serves
    # them on. Empty: every endpoint stays where the site file puts it.
    modbus: Mapping[tuple[str, int], int] = field(default_factory=dict)

    def modbus_port(self, host: str, port: int) -> int:
        return self.modbus.get((host, port), port)


# The documented defaults (README "make demo"): chosen away from the well-known ports so that a
# broker or web server already on this machine (1883, 8883, 8080, 8443) does not get in the way.
# The simulators' control API keeps its usual 8470 so `gatehouse simulate inject` needs no URL.
DEFAULT_PORTS = DemoPorts(broker=18883, central=18443, dashboard=18080, control=8470)

# With --ports BASE: BASE broker, +1 central, +2 dashboard, +3 control, +10... Modbus endpoints.
_MODBUS_OFFSET = 10
_MAX_MODBUS_ENDPOINTS = 200


def parse_port_spec(text: str) -> int | None:
    """``auto`` → None (free ports); a number → the base port."""
    if text == "auto":
        return None
    try:
        base = int(text)
    except ValueError:
        raise PortSpecError(f"--ports wants a number or 'auto', not {text!r}") from None
    if not 1024 <= base <= 65535 - _MODBUS_OFFSET - _MAX_MODBUS_ENDPOINTS:
        raise PortSpecError(f"--ports {base}: choose a base between 1024 and 65000")
    return base


def _free_port() -> int:
    return ports.free_port()


def plan_ports(spec: str | None, modbus_endpoints: Iterable[tuple[str, int]]) -> DemoPorts:
    """The demo's ports for ``--ports`` (None: the documented defaults)."""
    originals = sorted(set(modbus_endpoints))
    if len(originals) > _MAX_MODBUS_ENDPOINTS:
        raise PortSpecError(f"the site has {len(originals)} Modbus TCP endpoints; at most 200 are moved")
    if spec is None:
        return DEFAULT_PORTS
    base = parse_port_spec(spec)
    if base is None:
        used: set[int] = set()

        def pick() -> int:
            while True:
                port = _free_port()
                if port not in used:
                    used.add(port)
                    return port

        return DemoPorts(
            broker=pick(),
            central=pick(),
            dashboard=pick(),
            control=pick(),
            modbus={p: pick() for p in originals},
        )
    return DemoPorts(
        broker=base,
        central=base + 1,
        dashboard=base + 2,
        control=base + 3,
        modbus={p: base + _MODBUS_OFFSET + i for i, p in enumerate(originals)},
    )


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # SO_REUSEADDR as the servers use it: a port in TIME_WAIT after the last run is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def busy_ports(ports: DemoPorts, modbus: Iterable[int], *, dashboard: bool) -> list[str]:
    """Which of the demo's ports something else already listens on, described for the user."""
    wanted = [("the MQTT broker", ports.broker), ("central's API", ports.central)]
    wanted += [("the simulators' control API", ports.control)]
    if dashboard:
        wanted.append(("the dashboard", ports.dashboard))
    wanted += [("a simulated Modbus endpoint", port) for port in sorted(set(modbus))]
    return [f"{port} ({what})" for what, port in wanted if not _port_free(port)]


@dataclass(frozen=True, slots=True)
class DemoPaths:
    root: Path

    @property
    def site(self) -> Path:
        return self.root / "site.yaml"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def broker(self) -> Path:
        return self.root / "broker"

    @property
    def central(self) -> Path:
        return self.root / "central"

    @property
    def central_yaml(self) -> Path:
        return self.central / "central.yaml"

    @property
    def api_token(self) -> Path:
        return self.central / "api-token"

    @property
    def gateway(self) -> Path:
        return self.root / "gateway"

    @property
    def identity(self) -> Path:
        """What `gatehouse enroll` wrote: the gateway's keys, certificate and central's keys."""
        return self.gateway / "identity"

    @property
    def broker_pid(self) -> Path:
        """The broker's process id; central sends it SIGHUP after changing the ACL or passwords."""
        return self.broker / "mosquitto.pid"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def make(self) -> None:
        for folder in (self.root, self.pki, self.broker, self.central, self.gateway, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
