"""Free local ports for tools that start servers on loopback (tests, the demo, the chaos rig).

A port asked of the kernel with ``bind(0)`` comes from the ephemeral range, the same range every
outgoing connection takes its source port from: between handing such a port out and the server
binding it, a client socket can take it. So ports are picked at random below that range, checked
bindable for both TCP and UDP (BACnet/IP listens on UDP), and never handed out twice by one process.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading

LOW = 20_000
HIGH = 32_000  # below Linux's default ephemeral range (32768-60999)

_issued: set[int] = set()
_lock = threading.Lock()
_rng = random.Random()


def _bindable(port: int, host: str) -> bool:
    try:
        with contextlib.ExitStack() as stack:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                sock = stack.enter_context(socket.socket(socket.AF_INET, kind))
                sock.bind((host, port))
    except OSError:
        return False
    return True


def free_port_block(count: int = 1, *, host: str = "127.0.0.1") -> int:
    """The first of ``count`` consecutive ports free on ``host`` (TCP and UDP) and not yet issued."""
    if not 1 <= count <= 1000:
        raise ValueError(f"a block of {count} ports")
    with _lock:
        for _ in range(500):
            base = _rng.randrange(LOW, HIGH - count)
            block = range(base, base + count)
            if any(port in _issued for port in block):
                continue
            if all(_bindable(port, host) for port in block):
                _issued.update(block)
                return base
    raise OSError(f"no block of {count} free ports between {LOW} and {HIGH}")


def free_port(*, host: str = "127.0.0.1") -> int:
    """One port free on ``host`` for TCP and UDP, never handed out before by this process."""
    return free_port_block(1, host=host)
