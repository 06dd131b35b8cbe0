"""`make demo`: the whole system on this machine, in the foreground, with one command.

::

    python -m edge.demo [--site SITE.yaml] [--data-dir demo-data] [--ports BASE|auto]
                        [--no-dashboard] [--duration SECONDS]

In order, each step waiting until the previous part really answers:

1. credentials (private CA, broker certificate, central's broker credentials, signing and
   end-to-end keys; ``edge.demo.pki``), reused on later runs;
2. Mosquitto with the project's own configuration (``cloud_sync.broker_config``), TLS only;
3. the simulators for every device of the site (``gatehouse simulate``);
4. central (``gatehouse central``) with a ``trust:`` section and an API token;
5. the gateway enrols with a one-time token (``gatehouse enroll``; ``edge.demo.enrolment``),
   unless central already knows it;
6. the gateway (``gatehouse run``) on a derived copy of the site file with ``uplink: {identity}``
   and ``dashboard:`` sections (``edge.demo.site``);
7. a check that central's REST API shows the gateway online with values; then the URLs, the
   token and what to try are printed (``edge.demo.report``), and central sends the gateway a
   signed command and a configuration push, printing each result when it is back.

Ctrl-C or SIGTERM stops every child (gateway first, broker last) and waits for each; with
``--duration`` the demo stops by itself, which is how its test runs it. Exit codes: 0 after a
normal stop, 1 when a part failed to start or died, 2 for a usage or configuration problem.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import structlog

from cloud_sync.broker_config import BrokerConfigError, write_broker_config
from cloud_sync.certs import PkiError
from cloud_sync.errors import KeyFileError
from core.errors import ConfigError
from edge.demo.enrolment import EnrolmentError, ensure_enrolled, round_trip
from edge.demo.layout import DemoPaths, DemoPorts, PortSpecError, busy_ports, plan_ports
from edge.demo.pki import DemoCredentials, ensure_api_token, ensure_credentials
from edge.demo.procs import Child, ChildExited, probe_http, probe_tcp, probe_tls, wait_ready
from edge.demo.report import DemoSummary, render_summary
from edge.demo.site import DemoSiteError, SourceSite, read_source_site, write_central_yaml, write_derived_site

__all__ = ["DemoOptions", "main", "run_demo"]

_LOG = structlog.get_logger(__name__)
_T = TypeVar("_T")

DEFAULT_SITE = Path("config/examples/demo-estate.yaml")
DEFAULT_DATA_DIR = Path("demo-data")
MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")

# Deadlines for each part to come up; generous because a Raspberry Pi or a loaded CI machine
# needs a while to start 50+ simulated devices and four Python processes.
_BROKER_S = 30.0
_SIMULATORS_S = 120.0
_CENTRAL_S = 90.0
_GATEWAY_S = 180.0


class DemoError(Exception):
    """A part of the demo could not be set up or started; the message says what to do."""


class _Interrupted(Exception):
    """Ctrl-C / SIGTERM arrived while the demo was still starting."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    site: Path = DEFAULT_SITE
    data_dir: Path = DEFAULT_DATA_DIR
    ports: str | None = None  # None: the documented defaults; "auto"; or a base port
    dashboard: bool = True
    duration_s: float | None = None
    postgres: bool = False  # central on a private PostgreSQL (initdb + pg_ctl), not SQLite


def _say(text: str) -> None:
    try:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # Whoever read our output went away (`make demo | head`): carry on, and stop cleanly
        # when told to, without writing to (or failing on) the closed pipe again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def find_mosquitto() -> str:
    """The broker binary: $GATEHOUSE_MOSQUITTO, else PATH, else Debian's /usr/sbin/mosquitto."""
    override = os.environ.get("GATEHOUSE_MOSQUITTO")
    if override:
        if os.access(override, os.X_OK):
            return override
        raise DemoError(f"GATEHOUSE_MOSQUITTO={override} is not an executable file")
    # /usr/sbin is not on an ordinary user's PATH on Debian, so look there too.
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in MOSQUITTO_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    raise DemoError(
        "mosquitto (the MQTT broker) is not installed. Install it with "
        "`sudo apt-get install mosquitto` (`make demo` does this itself when run as root)."
    )


def dashboard_available() -> bool:
    return importlib.util.find_spec("edge.dashboard") is not None


def _python_child(name: str, paths: DemoPaths, *args: str) -> Child:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return Child(
        name, [sys.executable, "-m", "edge", *args], log_path=paths.log(name), cwd=Path.cwd(), env=env
    )


async def _unless_stopped(stop: asyncio.Event, work: Awaitable[_T]) -> _T:
    """Await ``work``, but give up (cancelling it) as soon as ``stop`` is set."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.create_task(stop.wait(), name="demo-wait-stop")
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    raise _Interrupted


async def _gateway_values(http: httpx.AsyncClient, central: str, gateway_id: str) -> int:
    """How many of the gateway's points central holds, once it reports the gateway online."""
    info = await probe_http(http, f"{central}/api/v1/gateways/{gateway_id}")
    if info is None or not info.json().get("online"):
        return 0
    points = await probe_http(http, f"{central}/api/v1/points?gateway={gateway_id}&limit=100000")
    return len(points.json()) if points is not None else 0


@dataclass(frozen=True, slots=True)
class _Prepared:
    paths: DemoPaths
    source: SourceSite
    ports: DemoPorts
    creds: DemoCredentials
    token: str
    dashboard: bool
    broker_config: Path
    mosquitto: str


def prepare(options: DemoOptions) -> _Prepared:
    """Everything before the first process starts: files, credentials, configurations."""
    mosquitto = find_mosquitto()
    paths = DemoPaths(options.data_dir.resolve())
    paths.make()
    try:
        source = read_source_site(options.site)
        ports = plan_ports(options.ports, source.endpoints())
        creds = ensure_credentials(paths.pki, source.gateway_id)
    except (PkiError, KeyFileError, PortSpecError) as exc:
        raise DemoError(str(exc)) from exc
    token = ensure_api_token(paths.api_token)
    dashboard = options.dashboard and dashboard_available()
    if options.dashboard and not dashboard:
        _say("note: the LAN dashboard (edge.dashboard) is not part of this build; running without it")
    modbus = [ports.modbus_port(host, port) for host, port in source.tcp_endpoints()]
    modbus += [ports.modbus_port(host, port) for host, port in source.gateway_listens()]
    busy = busy_ports(ports, modbus, dashboard=dashboard)
    if busy:
        raise DemoError(
            f"these ports are in use: {', '.join(busy)}. Is another demo still running? "
            "Stop it, or move this one with --ports BASE (or --ports auto)."
        )
    write_derived_site(source, paths, ports, dashboard=dashboard)
    write_central_yaml(paths, ports, creds, gateway_id=source.gateway_id, token=token)
    try:
        files = write_broker_config(
            paths.broker, layout=creds.layout, port=ports.broker, run_as_root=os.geteuid() == 0
        )
    except BrokerConfigError as exc:
        raise DemoError(f"cannot render the broker configuration: {exc}") from exc
    return _Prepared(paths, source, ports, creds, token, dashboard, files.config, mosquitto)


def _check_site(site_path: Path) -> None:
    """The gateway would refuse a bad file anyway; checking first says so before it starts.
    (After enrolment: the site's ``uplink: {identity: ...}`` names the folder enrolment writes.)"""
    from edge.config.loader import load_site

    try:
        load_site(site_path)
    except ConfigError as exc:
        problems = "\n".join(str(p) for p in exc.problems)
        raise DemoError(f"the derived site file has problems:\n{problems}") from exc


def _fire_panel(source: SourceSite) -> str | None:
    for device in source.data.get("devices") or ():
        if isinstance(device, dict) and str(device.get("profile", "")).startswith("fire-panel"):
            return str(device["id"])
    return None


async def _start_all(
    p: _Prepared, stack: AsyncExitStack, stop: asyncio.Event, *, postgres: bool = False
) -> tuple[list[Child], int, httpx.AsyncClient]:
    """Start the four parts in order; return them, the number of points central holds and the
    HTTP client that talks to central's API (with the demo's token)."""
    paths, ports = p.paths, p.ports
    http = await stack.enter_async_context(httpx.AsyncClient(timeout=5.0))
    central_url = f"http://127.0.0.1:{ports.central}"
    children: list[Child] = []

    async def start(child: Child) -> Child:
        # Entered into the stack, so they stop in reverse order: gateway, central, simulators, broker.
        await stack.enter_async_context(child)
        children.append(child)
        return child

    _say(f"starting the MQTT broker (TLS) on 127.0.0.1:{ports.broker} ...")
    broker_argv = [p.mosquitto, "-c", str(p.broker_config)]
    broker = await start(Child("broker", broker_argv, log_path=paths.log("broker"), cwd=paths.broker))
    # Central reloads the broker (SIGHUP) after it changes the ACL or the password file.
    paths.broker_pid.write_text(f"{broker.pid}\n", encoding="ascii")
    _say(f"starting the simulators ({p.source.device_count} devices, control API port {ports.control}) ...")
    simulators = await start(
        _python_child("simulators", paths, "simulate", str(paths.site), "--control-port", str(ports.control))
    )
    await _unless_stopped(
        stop,
        wait_ready(
            broker,
            lambda: probe_tls("127.0.0.1", ports.broker, p.creds.layout.ca_cert),
            timeout_s=_BROKER_S,
            what="the broker",
        ),
    )
    if postgres:
        from cloud_sync.central.storage.local_pg import start_postgres

        _say("starting a private PostgreSQL for central (initdb + pg_ctl in a temporary folder) ...")
        server = stack.enter_context(start_postgres(durable=True))
        database = server.create_database()
        write_central_yaml(
            paths, ports, p.creds, gateway_id=p.source.gateway_id, token=p.token, database=database
        )
        _say(f"central's database: {database}")
    _say(f"starting central (REST API on 127.0.0.1:{ports.central}) ...")
    central = await start(_python_child("central", paths, "central", "--config", str(paths.central_yaml)))
    await _unless_stopped(
        stop,
        wait_ready(
            simulators,
            lambda: probe_http(http, f"http://127.0.0.1:{ports.control}/health"),
            timeout_s=_SIMULATORS_S,
            what="the simulators' control API",
        ),
    )
    for host, port in sorted(set(read_source_site(paths.site).tcp_endpoints())):
        await _unless_stopped(
            stop,
            wait_ready(
                simulators,
                lambda h=host, n=port: probe_tcp(h, n),  # type: ignore[misc]
                timeout_s=_SIMULATORS_S,
                what=f"the simulated Modbus TCP endpoint {host}:{port}",
            ),
        )
    await _unless_stopped(
        stop,
        wait_ready(
            central,
            lambda: probe_http(http, f"{central_url}/openapi.json"),
            timeout_s=_CENTRAL_S,
            what="central's REST API",
        ),
    )
    http.headers["Authorization"] = f"Bearer {p.token}"
    try:
        if await ensure_enrolled(http, central_url, paths, p.source.gateway_id, log=paths.log("enroll")):
            _say(f"enrolled the gateway {p.source.gateway_id} with a one-time token (gatehouse enroll) ...")
        else:
            _say(f"the gateway {p.source.gateway_id} is already enrolled; its identity is reused")
    except EnrolmentError as exc:
        raise DemoError(f"the gateway could not enrol: {exc}") from exc
    await asyncio.to_thread(_check_site, paths.site)
    _say("starting the gateway ...")
    gateway = await start(_python_child("gateway", paths, "run", "--config", str(paths.site)))
    if p.dashboard:
        await _unless_stopped(
            stop,
            wait_ready(
                gateway,
                lambda: probe_http(http, f"http://127.0.0.1:{ports.dashboard}/api/session"),
                timeout_s=_GATEWAY_S,
                what="the LAN dashboard",
            ),
        )
    _say("waiting for the first values to reach central ...")
    points: int = await _unless_stopped(
        stop,
        wait_ready(
            gateway,
            lambda: _gateway_values(http, central_url, p.source.gateway_id),
            timeout_s=_GATEWAY_S,
            what="values from the gateway at central",
            interval_s=1.0,
        ),
    )
    # Central and the others must still be up, not only the gateway.
    for child in children:
        if not child.running:
            raise ChildExited(child)
    return children, points, http


async def _watch(children: Sequence[Child], stop: asyncio.Event, duration_s: float | None) -> Child | None:
    """Block until stop, the duration, or a child's death; return the child that died, if one did."""
    waits = {
        asyncio.create_task(c.process.wait(), name=f"demo-watch-{c.name}"): c for c in children if c.process
    }
    stopper = asyncio.create_task(stop.wait(), name="demo-watch-stop")
    try:
        done, _ = await asyncio.wait(
            {*waits, stopper}, timeout=duration_s, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for task in (*waits, stopper):
            task.cancel()
    dead = [waits[t] for t in done if t in waits]
    return dead[0] if dead else None


async def _run_started(
    prepared: _Prepared,
    stack: AsyncExitStack,
    stop: asyncio.Event,
    duration_s: float | None,
    *,
    postgres: bool = False,
) -> int:
    """Start everything into ``stack``, print the summary, run until told to stop."""
    try:
        children, points, http = await _start_all(prepared, stack, stop, postgres=postgres)
    except _Interrupted:
        _say("interrupted while starting")
        return 0
    except DemoError as exc:
        _say(f"make demo: {exc}")
        return 1
    except ChildExited as exc:
        _say(f"make demo: {exc}:\n{exc.child.tail()}")
        return 1
    except TimeoutError as exc:
        _say(f"make demo: {exc}")
        return 1
    _say(
        render_summary(
            DemoSummary(
                paths=prepared.paths,
                ports=prepared.ports,
                site_id=prepared.source.site_id,
                gateway_id=prepared.source.gateway_id,
                devices=prepared.source.device_count,
                points_at_central=points,
                token=prepared.token,
                dashboard=prepared.dashboard,
                reused_credentials=not prepared.creds.created,
                fire_device=_fire_panel(prepared.source),
            )
        )
    )
    central = f"http://127.0.0.1:{prepared.ports.central}"
    # Central talks back: a signed command and a configuration push, followed to their results.
    trip = asyncio.create_task(
        round_trip(http, central, prepared.paths, prepared.source.gateway_id, _say), name="demo-round-trip"
    )
    try:
        dead = await _watch(children, stop, duration_s)
    finally:
        trip.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await trip
    if dead is not None:
        _say(f"make demo: {dead.name} stopped unexpectedly (code {dead.returncode}):\n{dead.tail()}")
        return 1
    return 0


async def run_demo(options: DemoOptions) -> int:
    try:
        prepared = await asyncio.to_thread(prepare, options)
    except (DemoError, DemoSiteError) as exc:
        _say(f"make demo: {exc}")
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with AsyncExitStack() as stack:
            code = await _run_started(prepared, stack, stop, options.duration_s, postgres=options.postgres)
            _say("stopping: gateway, central, simulators, broker ...")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    _say("demo stopped; every process has exited.")
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m edge.demo",
        description="Run simulators, an MQTT broker, central and the gateway on this machine.",
    )
    parser.add_argument("--site", type=Path, default=DEFAULT_SITE, help=f"site file (default {DEFAULT_SITE})")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"where everything is kept (default {DEFAULT_DATA_DIR})",
    )
    parser.add_argument(
        "--ports",
        default=None,
        metavar="BASE|auto",
        help="move every port: BASE broker, +1 central, +2 dashboard, +3 simulator control, +10.. Modbus; "
        "'auto' picks free ports (default: 18883, 18443, 18080, 8470, Modbus as in the site file)",
    )
    parser.add_argument("--no-dashboard", action="store_true", help="do not serve the LAN dashboard")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="central on a private PostgreSQL (Debian's server) instead of SQLite",
    )
    parser.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.duration is not None and args.duration <= 0:
        build_parser().error("--duration must be positive")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings and up
    options = DemoOptions(
        site=args.site,
        data_dir=args.data_dir,
        ports=args.ports,
        dashboard=not args.no_dashboard,
        duration_s=args.duration,
        postgres=args.postgres,
    )
    return asyncio.run(run_demo(options))
