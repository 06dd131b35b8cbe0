"""Ports handed to servers started by tests and the demo: free, outside the ephemeral range, unique."""

from __future__ import annotations

import socket

from core import ports


def test_ports_are_unique_bindable_and_below_the_ephemeral_range() -> None:
    issued = [ports.free_port() for _ in range(300)]
    assert len(set(issued)) == len(issued)
    for port in issued:
        assert ports.LOW <= port < ports.HIGH
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        udp.bind(("127.0.0.1", issued[-1]))
        tcp.bind(("127.0.0.1", issued[-1]))


def test_a_block_skips_ports_already_taken() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        base = ports.free_port_block(20)
    block = set(range(base, base + 20))
    assert len(block) == 20
    assert ports.free_port() not in block
