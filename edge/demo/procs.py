"""Child processes of the demo and the probes that tell when each one is really up.

Each child runs in its own session and process group (``start_new_session``), so:

* Ctrl-C in the terminal reaches only the demo, which then stops the children in a sensible
  order (gateway first, so its outbox is flushed while the broker and central are still there);
* stopping a child signals its whole group, so nothing it started is left behind;
* should the demo itself be killed outright, ``PR_SET_PDEATHSIG`` makes the kernel send each
  child SIGTERM, so no orphan keeps a port busy.

Output goes to one log file per child under ``demo-data/logs/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx
import structlog

__all__ = ["Child", "ChildExited", "probe_http", "probe_tcp", "probe_tls", "wait_ready"]

_LOG = structlog.get_logger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM it when the demo process goes away."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        # Not Linux: the demo's own signal handling still stops the children.
        return


class ChildExited(Exception):
    """A child process ended while the demo needed it."""

    def __init__(self, child: Child) -> None:
        self.child = child
        super().__init__(f"{child.name} exited with code {child.returncode}; last lines of {child.log_path}")


class Child:
    """One long-running program of the demo (broker, simulators, central, gateway)."""

    def __init__(
        self, name: str, argv: Sequence[str], *, log_path: Path, cwd: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.cwd = cwd
        self.env = env
        self.process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def returncode(self) -> int | None:
        return self.process.returncode if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._log.write(f"--- demo: starting {' '.join(self.argv)}\n".encode())
        self._log.flush()
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
            cwd=self.cwd,
            env=self.env,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        _LOG.debug("child started", child=self.name, pid=self.process.pid)

    def _signal_group(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            # The child is its group's leader (start_new_session), so pgid == pid.
            os.killpg(self.process.pid, sig)

    async def stop(self, *, timeout_s: float = 20.0) -> None:
        """SIGTERM the child's process group, SIGKILL it if it does not end within ``timeout_s``."""
        proc = self.process
        if proc is None:
            return
        if proc.returncode is None:
            self._signal_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout_s)
            except TimeoutError:
                _LOG.warning("child did not stop in time; killing it", child=self.name, timeout_s=timeout_s)
                self._signal_group(signal.SIGKILL)
                await proc.wait()
        # Anything the child left in its group (it should have none) goes too.
        self._signal_group(signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def __aenter__(self) -> Child:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def wait_ready(
    child: Child,
    probe: Callable[[], Awaitable[Any]],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.25,
) -> Any:
    """Poll ``probe`` until it returns something truthy; fail early if ``child`` exits."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        if not child.running:
            raise ChildExited(child)
        result = await probe()
        if result:
            return result
        if loop.time() > deadline:
            raise TimeoutError(f"{what} was not ready after {timeout_s:.0f} s; see {child.log_path}")
        await asyncio.sleep(interval_s)


async def probe_tcp(host: str, port: int) -> bool:
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def probe_tls(host: str, port: int, ca_file: Path) -> bool:
    """True once ``host:port`` completes a TLS handshake with a certificate from ``ca_file``."""

    def handshake() -> bool:
        ctx = ssl.create_default_context(cafile=str(ca_file))
        try:
            with (
                socket.create_connection((host, port), timeout=2.0) as raw,
                ctx.wrap_socket(raw, server_hostname=host),
            ):
                return True
        except OSError:  # ssl.SSLError is an OSError too
            return False

    return await asyncio.to_thread(handshake)


async def probe_http(client: httpx.AsyncClient, url: str) -> httpx.Response | None:
    """The response if ``url`` answered 2xx, else None (refused, timed out, or an error status)."""
    try:
        response = await client.get(url)
    except httpx.HTTPError:
        return None
    return response if response.is_success else None
