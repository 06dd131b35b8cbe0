"""Opening a serial port the way every serial driver needs it: non-blocking, exclusive, with the
bus's line settings, and a failure translated to ``ConnectionLost`` (the port is retried)."""

from __future__ import annotations

from typing import Any

from core.errors import ConnectionLost

__all__ = ["open_serial"]


def open_serial(path: str, *, baudrate: int, bytesize: int, parity: str, stopbits: int) -> Any:
    """A ``serial.Serial`` on ``path`` with ``timeout=0`` (reads go through the event loop) and
    ``exclusive=True`` (a second program on the same adapter would garble the line)."""
    import serial  # here: ``gatehouse check`` never needs pyserial

    try:
        return serial.Serial(
            path,
            baudrate=baudrate,
            bytesize=bytesize,
            parity=parity,
            stopbits=stopbits,
            timeout=0,
            exclusive=True,
        )
    except (serial.SerialException, OSError, ValueError) as exc:
        raise ConnectionLost(f"cannot open {path}: {exc}") from exc
