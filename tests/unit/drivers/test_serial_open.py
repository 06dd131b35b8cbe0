"""A serial port the line settings cannot be applied to is a lost port (retried), not a crash."""

from __future__ import annotations

import os
import termios
from typing import Any

import pytest

from core.errors import ConnectionLost
from drivers.serial_open import open_serial


def test_line_settings_refused_by_the_device_are_a_lost_port(monkeypatch: pytest.MonkeyPatch) -> None:
    controller, device = os.openpty()
    path = os.ttyname(device)

    def refuse(*_args: Any) -> None:
        # What a pty whose other side went away answered during a configuration push in the demo.
        raise termios.error(22, "Invalid argument")

    monkeypatch.setattr(termios, "tcsetattr", refuse)  # every attempt, the reset's too
    try:
        with pytest.raises(ConnectionLost, match=f"cannot open {path}"):
            open_serial(path, baudrate=9600, bytesize=8, parity="N", stopbits=1)
    finally:
        os.close(controller)
        os.close(device)


@pytest.mark.parametrize(("baudrate", "parity"), [(19200, "E"), (9600, "O"), (38400, "E"), (9600, "N")])
def test_a_pty_reopens_with_parity_after_a_previous_session(baudrate: int, parity: str) -> None:
    """A reload closes and reopens every serial bus; on a pty the second open used to be EINVAL."""
    controller, device = os.openpty()
    path = os.ttyname(device)
    try:
        for _session in range(3):
            port = open_serial(path, baudrate=baudrate, bytesize=8, parity=parity, stopbits=1)
            assert port.is_open and port.baudrate == baudrate
            port.close()
    finally:
        os.close(controller)
        os.close(device)


def test_a_working_pty_opens() -> None:
    controller, device = os.openpty()
    try:
        port = open_serial(os.ttyname(device), baudrate=9600, bytesize=8, parity="N", stopbits=1)
        assert port.is_open
        port.close()
    finally:
        os.close(controller)
        os.close(device)


async def test_rs485_mode_refused_by_a_pty_leaves_the_port_working() -> None:
    from drivers.modbus.serial_port import SerialPortTransport

    controller, device = os.openpty()
    try:
        for _session in range(2):
            transport = SerialPortTransport(os.ttyname(device), baudrate=19200, parity="E", rs485=True)
            await transport.open()
            assert transport.lost_reason is None
            transport.close()
    finally:
        os.close(controller)
        os.close(device)


async def test_a_flush_on_a_port_whose_other_end_went_away_is_a_lost_port() -> None:
    """tcflush answers EIO once a pty's controller is gone (an unplugged adapter); that is a
    ``termios.error``, not an ``OSError``, and it once crashed the line's scheduler."""
    from drivers.modbus.serial_port import SerialPortTransport

    controller, device = os.openpty()
    path = os.ttyname(device)
    transport = SerialPortTransport(path, baudrate=19200, parity="E")
    await transport.open()
    os.close(controller)
    os.close(device)
    try:
        transport.flush_input()
        assert transport.lost_reason is not None and "flush failed" in transport.lost_reason
        with pytest.raises(ConnectionLost):
            await transport.send(b"\x01\x03\x00\x00\x00\x01\x84\x0a")
    finally:
        transport.close()
