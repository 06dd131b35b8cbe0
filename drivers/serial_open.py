"""Opening a serial port the way every serial driver needs it: non-blocking, exclusive, with the
bus's line settings, and a failure translated to ``ConnectionLost`` (the port is retried)."""

from __future__ import annotations

import errno
import os
from typing import Any

from core.errors import ConnectionLost

__all__ = ["open_serial"]


def _reset_line(path: str, baudrate: int) -> None:
    """Move the line to other settings, so that configuring it again changes something.

    Linux answers EINVAL when not one of the requested termios changes can be carried out. A
    pseudo-terminal silently drops parity, so even parity at an unchanged speed (what a previous
    session left behind) is refused outright, and a port reopened after a reload would stay
    lost. The first open works only because the speed changes; this makes every open like it.
    """
    import termios

    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        attrs = termios.tcgetattr(fd)
        attrs[2] &= ~(termios.PARENB | termios.PARODD)
        attrs[4] = attrs[5] = termios.B9600 if baudrate == 38400 else termios.B38400
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    finally:
        os.close(fd)


def open_serial(path: str, *, baudrate: int, bytesize: int, parity: str, stopbits: int) -> Any:
    """A ``serial.Serial`` on ``path`` with ``timeout=0`` (reads go through the event loop) and
    ``exclusive=True`` (a second program on the same adapter would garble the line)."""
    import termios  # POSIX only, like pyserial's serialposix that raises it

    import serial  # here: ``gatehouse check`` never needs pyserial

    def attempt() -> Any:
        return serial.Serial(
            path,
            baudrate=baudrate,
            bytesize=bytesize,
            parity=parity,
            stopbits=stopbits,
            timeout=0,
            exclusive=True,
        )

    try:
        try:
            return attempt()
        except termios.error as exc:
            if exc.args[:1] != (errno.EINVAL,):
                raise
            _reset_line(path, baudrate)
            return attempt()
    # termios.error is not an OSError: line settings the device refuses (an adapter that cannot
    # do the baud rate) must be a lost port, retried, not a crash.
    except (serial.SerialException, OSError, ValueError, termios.error) as exc:
        raise ConnectionLost(f"cannot open {path}: {exc}") from exc
