"""systemd's notify protocol (``sd_notify(3)``), spoken directly over ``$NOTIFY_SOCKET``.

The protocol is one datagram per message on an ``AF_UNIX`` ``SOCK_DGRAM`` socket whose path is
in ``NOTIFY_SOCKET`` (a leading ``@`` means the Linux abstract namespace). Each message is
newline-separated ``KEY=value`` assignments: ``READY=1``, ``STOPPING=1``, ``RELOADING=1``,
``STATUS=…``, ``WATCHDOG=1``. ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``) tell the service how
often systemd expects ``WATCHDOG=1``.

:class:`Notifier` is a no-op when the variables are absent (a run from a shell, or
``Type=exec``), so the daemon calls it unconditionally. :func:`watchdog_loop` feeds the watchdog
from the event loop itself: a wedged loop stops feeding and systemd restarts the service, which is
the point (a thread would keep feeding a dead loop).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Mapping

import structlog

__all__ = ["Notifier", "watchdog_interval_s", "watchdog_loop"]

_LOG = structlog.get_logger(__name__)


def _address(raw: str) -> str | bytes:
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()  # abstract namespace
    return raw


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """Half of ``WATCHDOG_USEC`` in seconds, or None when no watchdog is asked of this process."""
    env = os.environ if env is None else env
    raw = env.get("WATCHDOG_USEC")
    if not raw:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None  # meant for another process (e.g. a shell that started us)
    try:
        usec = int(raw)
    except ValueError:
        _LOG.warning("ignoring malformed WATCHDOG_USEC", value=raw)
        return None
    if usec <= 0:
        return None
    return usec / 2_000_000


class Notifier:
    """Sends notify messages; every method is a no-op without ``NOTIFY_SOCKET``."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET") or ""
        self._address: str | bytes | None = _address(raw) if raw else None
        self._sock: socket.socket | None = None
        self._failed = False
        self._last_status: str | None = None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines (``READY=1`` as ``send(READY=1)``); True if delivered."""
        if self._address is None:
            return False
        body = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(body, self._address)
        except OSError as exc:
            # systemd gone or the socket not ours: log once, never crash the gateway over it.
            if not self._failed:
                _LOG.warning("sd_notify failed", error=str(exc), socket=str(self._address))
                self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str | None = None) -> bool:
        fields: dict[str, str | int] = {"READY": 1}
        if status is not None:
            fields["STATUS"] = status
        return self.send(**fields, MAINPID=os.getpid())

    def status(self, text: str) -> bool:
        if text == self._last_status:
            return True
        self._last_status = text
        return self.send(STATUS=text)

    def stopping(self) -> bool:
        return self.send(STOPPING=1)

    def reloading(self) -> bool:
        return self.send(RELOADING=1)

    def watchdog(self) -> bool:
        return self.send(WATCHDOG=1)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


async def watchdog_loop(
    notifier: Notifier, interval_s: float, status: Callable[[], str] | None = None
) -> None:
    """Feed ``WATCHDOG=1`` (and refresh ``STATUS=``) every ``interval_s`` until cancelled."""
    while True:
        notifier.watchdog()
        if status is not None:
            notifier.status(status())
        await asyncio.sleep(interval_s)
