"""`gatehouse run --config SITE.yaml`: the gateway daemon.

Before anything starts, every resource that can be busy or missing is checked (:func:`preflight`):
the data folder, the dashboard's port, the serial ports the buses name, the certificate and key
files. Each problem is one line that says what to do, and the daemon exits with status 2 — no
traceback, and no rules or outbox half started.

SIGTERM/SIGINT stop it cleanly (the outbox is flushed first); SIGHUP reloads the site file,
but only if it validates: otherwise the running configuration stays and the errors are logged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from core.errors import ConfigError, GatehouseError
from edge.sd_notify import Notifier, watchdog_interval_s

_LOG = structlog.get_logger("gatehouse.run")


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("run", help="run the gateway daemon")
    parser.add_argument("--config", "-c", required=True, type=Path, help="the site file (YAML)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default=None)
    parser.add_argument("--console-logs", action="store_true", help="human-readable logs, not JSON")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from edge.config.loader import load_site
    from edge.config_push import recover_interrupted_push
    from edge.logs import configure_logging

    try:
        site = load_site(args.config)
        # A pushed site file whose trial never ended (the daemon was killed or crashed by it)
        # gives way to the file that ran before it.
        if recover_interrupted_push(site.path, site.data_dir):
            site = load_site(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"gatehouse run: {len(exc.problems)} problem(s) in the configuration", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"gatehouse run: cannot read {args.config}: {exc.strerror}", file=sys.stderr)
        return 2
    busy = preflight(site)
    if busy:
        for line in busy:
            print(f"gatehouse run: {line}", file=sys.stderr)
        return 2
    configure_logging(args.log_level or site.config.gateway.log_level, json=not args.console_logs)
    try:
        return asyncio.run(_main(site, args.config))
    except GatehouseError as exc:
        # something taken between the check and the start (another process was quicker)
        print(f"gatehouse run: {exc}", file=sys.stderr)
        return 1


# -- checks before anything starts ---------------------------------------------------------


def preflight(site: Any) -> list[str]:
    """Every resource the daemon needs that is busy or missing, one line each with what to do."""
    return [
        *_data_dir(site),
        *_dashboard_port(site),
        *_serial_ports(site),
        *_files(site),
    ]


def _data_dir(site: Any) -> list[str]:
    folder = Path(site.data_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".gatehouse-check-"):
            pass
    except OSError as exc:
        return [
            f"the data folder {folder} is not writable ({exc.strerror or exc}): create it for the "
            f"gateway's user (chown) or set gateway.data_dir in {site.path}"
        ]
    return []


def _dashboard_port(site: Any) -> list[str]:
    raw = site.config.dashboard
    if raw is None:
        return []
    from edge.dashboard.config import dashboard_config

    config = dashboard_config(raw, site)
    if config.port == 0:
        return []
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((config.host, config.port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                why = "is already in use (another gatehouse or web server?)"
                todo = "stop that program or change dashboard.listen"
            elif exc.errno == errno.EACCES:
                why = "needs privileges (ports below 1024)"
                todo = "use a port above 1024 in dashboard.listen"
            else:
                why = f"cannot be opened ({exc.strerror or exc})"
                todo = "check the address in dashboard.listen"
            return [f"dashboard port {config.listen} {why}: {todo} in {site.path}"]
    return []


def _serial_ports(site: Any) -> list[str]:
    out = []
    for index, bus in enumerate(site.config.buses):
        port = getattr(bus, "port", None)
        if not isinstance(port, str) or not port.startswith("/"):
            continue  # a TCP port number, or not a device path
        if not os.path.exists(port):
            out.append(
                f"serial port {port} of bus {bus.id} does not exist: plug in the adapter or correct "
                f"buses[{index}].port in {site.path}"
            )
        elif not os.access(port, os.R_OK | os.W_OK):
            out.append(
                f"serial port {port} of bus {bus.id} is not readable and writable by this user: add the "
                "user to the 'dialout' group (then log in again)"
            )
    return out


def _files(site: Any) -> list[str]:
    from edge.uplink.wiring import FILE_KEYS

    base = Path(site.path).parent
    wanted: list[tuple[str, Any]] = []
    for key in ("tls_cert", "tls_key"):
        wanted.append((f"dashboard.{key}", (site.config.dashboard or {}).get(key)))
    for key in FILE_KEYS:
        wanted.append((f"uplink.{key}", (site.config.uplink or {}).get(key)))
    out = []
    for where, value in wanted:
        if not isinstance(value, str) or not value:
            continue
        path = base / value
        if not path.is_file():
            out.append(f"{where}: file {path} does not exist: create it (gatehouse certs) or fix {where}")
        elif not os.access(path, os.R_OK):
            out.append(f"{where}: file {path} is not readable by this user: fix its owner or mode")
    return out


async def _main(site: Any, path: Path) -> int:
    from edge.app import Gateway
    from edge.config.loader import load_site

    loop = asyncio.get_running_loop()
    async with Gateway(site) as gateway:

        def on_hup() -> None:
            async def reload() -> None:
                try:
                    new_site = await asyncio.to_thread(load_site, path)
                except ConfigError as exc:
                    _LOG.error(
                        "reload refused: the new configuration is invalid; keeping the running one",
                        problems=[str(p) for p in exc.problems],
                    )
                    return
                except OSError as exc:
                    _LOG.error("reload refused: cannot read the site file", error=str(exc))
                    return
                gateway.reload(new_site)

            task = loop.create_task(reload(), name="reload")
            _reloads.add(task)
            task.add_done_callback(_reloads.discard)

        _print_setup_code(gateway)
        notifier = Notifier()
        watchdog = _ShutdownWatchdog(loop, gateway.stop, notifier=notifier)
        loop.add_signal_handler(signal.SIGTERM, watchdog.on_signal)
        loop.add_signal_handler(signal.SIGINT, watchdog.on_signal)
        loop.add_signal_handler(signal.SIGHUP, on_hup)
        _LOG.info("gateway started", site=site.id, devices=len(site.devices), outbox=str(site.outbox_path))
        systemd = loop.create_task(_systemd(gateway, notifier), name="systemd-notify")
        try:
            await gateway.run()
        finally:
            systemd.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await systemd
            notifier.close()
    _LOG.info("gateway stopped; outbox flushed")
    return 0


def _print_setup_code(gateway: Any) -> None:
    """On a first start (no dashboard account yet), the one-time setup code on the console
    (standard error: the journal under systemd), so that only someone who can read the
    gateway's console or its data folder can create the first administrator."""
    dashboard = gateway.dashboard
    code = getattr(dashboard, "setup_code", None)
    if dashboard is None or not code:
        return
    print(
        f"\n  Dashboard first start: setup code  {code}\n"
        f"  Open {dashboard.url}/ and give this code to create the administrator account.\n"
        f"  It is also in {gateway.site.data_dir / 'dashboard-setup-code'} (readable by root only).\n",
        file=sys.stderr,
        flush=True,
    )


async def _systemd(gateway: Any, notifier: Notifier) -> None:
    """READY=1 once the devices run (the outbox is open and the dashboard listens by then,
    since ``Gateway.__aenter__`` returned), then WATCHDOG=1 and STATUS= from this event loop."""
    from edge.metrics import StatusLine

    await gateway.devices_running()
    status = StatusLine(gateway)
    await status.refresh()
    notifier.ready(status.text)
    _LOG.info("ready", notify=notifier.enabled, status=status.text)
    interval_s = watchdog_interval_s()
    beat_s = interval_s if interval_s is not None else _STATUS_EVERY_S
    refresh = asyncio.get_running_loop().create_task(status.run(_STATUS_EVERY_S), name="status")
    try:
        while True:
            if interval_s is not None:
                notifier.watchdog()
            notifier.status(status.text)
            await asyncio.sleep(beat_s)
    finally:
        refresh.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresh


_STATUS_EVERY_S = 5.0


_reloads: set[asyncio.Task[None]] = set()

# A clean stop takes a few seconds (flush the outbox, say "offline" to the broker). Past this,
# something is stuck: better to exit and let systemd restart us than to hang with a dead daemon.
SHUTDOWN_TIMEOUT_S = 30.0


class _ShutdownWatchdog:
    """First SIGTERM/SIGINT: clean stop, with a deadline. Second one, or the deadline: exit now.

    Exiting without the clean path is safe for data: every sample whose outbox commit returned
    is on disk (the same guarantee that covers kill -9). What is lost is only what had not been
    committed yet, and the stuck tasks are logged first so the hang can be diagnosed.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        stop: Callable[[], None],
        exit: Callable[[int], Any] = os._exit,
        *,
        notifier: Notifier | None = None,
    ) -> None:
        self._loop = loop
        self._stop = stop
        self._exit = exit
        self._notifier = notifier
        self._stopping = False

    def on_signal(self) -> None:
        if self._stopping:
            self._force("second stop signal during shutdown")
            return
        self._stopping = True
        if self._notifier is not None:
            self._notifier.stopping()
        self._stop()
        self._loop.call_later(SHUTDOWN_TIMEOUT_S, self._force, "clean shutdown took too long")

    def _force(self, why: str) -> None:
        stuck = [
            {"task": task.get_name(), "at": _where(task)}
            for task in asyncio.all_tasks(self._loop)
            if not task.done()
        ]
        _LOG.error("forced exit", reason=why, timeout_s=SHUTDOWN_TIMEOUT_S, stuck_tasks=stuck)
        logging.shutdown()
        self._exit(1)


def _where(task: asyncio.Task[Any]) -> str:
    frames = task.get_stack(limit=1)
    if not frames:
        return "?"
    code = frames[-1].f_code
    return f"{code.co_filename}:{frames[-1].f_lineno} in {code.co_name}"
