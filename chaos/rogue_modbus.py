"""A Modbus TCP endpoint whose units misbehave in the ways field devices and bridges do.

The simulators' own faults (``comm_loss``, ``slow``, ``exception``, ``garbage``) are injected
through their control API; this endpoint adds what a well-behaved simulator never sends. The
unit id picks the misbehaviour, so one endpoint serves them all:

====  ==============  ===========================================================================
unit  mode            answer
====  ==============  ===========================================================================
1     wrong_unit      a well-formed answer from another unit id
2     partial         the first half of a good frame, then the rest after the gateway's timeout
3     garbage         random bytes of random length
4     bad_length      an MBAP length field that lies (too long, too short, zero)
5     wrong_tid       a good answer to another transaction
6     wrong_function  a good frame with another function code, or a byte count that lies
7     mixed           one of the above, or a good answer, at random
====  ==============  ===========================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
from types import TracebackType

__all__ = ["MODES", "RogueModbus"]

MODES: dict[int, str] = {
    1: "wrong_unit",
    2: "partial",
    3: "garbage",
    4: "bad_length",
    5: "wrong_tid",
    6: "wrong_function",
    7: "mixed",
}


def _good_pdu(pdu: bytes, rng: random.Random) -> bytes:
    function = pdu[0] if pdu else 3
    if function in (1, 2, 3, 4) and len(pdu) >= 5:
        count = struct.unpack(">H", pdu[3:5])[0]
        if function in (1, 2):
            body = bytes(rng.getrandbits(8) for _ in range((count + 7) // 8))
        else:
            body = bytes(rng.getrandbits(8) for _ in range(2 * min(count, 125)))
        return bytes([function, len(body) & 0xFF]) + body
    if function in (5, 6, 15, 16):
        return pdu[:5]
    return bytes([function | 0x80, 1])


def _frame(tid: int, unit: int, pdu: bytes, *, length: int | None = None) -> bytes:
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1 if length is None else length, unit) + pdu


class RogueModbus:
    def __init__(self, *, seed: int = 1, partial_hold_s: float = 1.0) -> None:
        self.port = 0
        self.requests = 0
        self.answers: dict[str, int] = {}
        self._rng = random.Random(seed)
        self._partial_hold_s = partial_hold_s
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> RogueModbus:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                header = await reader.readexactly(7)
                tid, _proto, length, unit = struct.unpack(">HHHB", header)
                pdu = await reader.readexactly(max(0, length - 1))
                self.requests += 1
                mode = MODES.get(unit, "mixed")
                if mode == "mixed":
                    mode = self._rng.choice([*MODES.values()][:-1] + ["good"])
                self.answers[mode] = self.answers.get(mode, 0) + 1
                await self._answer(writer, mode, tid, unit, pdu)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, writer: asyncio.StreamWriter, mode: str, tid: int, unit: int, pdu: bytes) -> None:
        rng = self._rng
        good = _good_pdu(pdu, rng)
        if mode == "good":
            out = _frame(tid, unit, good)
        elif mode == "wrong_unit":
            out = _frame(tid, (unit + 1 + rng.randrange(200)) % 256, good)
        elif mode == "partial":
            frame = _frame(tid, unit, good)
            writer.write(frame[: max(1, len(frame) // 2)])
            await writer.drain()
            # The rest arrives late, after the gateway gave up on this request: the next read
            # on the connection starts in the middle of a frame.
            await asyncio.sleep(self._partial_hold_s)
            out = frame[len(frame) // 2 :]
        elif mode == "garbage":
            out = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 300)))
        elif mode == "bad_length":
            out = _frame(tid, unit, good, length=rng.choice([0, 1, len(good) + 50, 65535, len(good) // 2]))
        elif mode == "wrong_tid":
            out = _frame((tid + 1 + rng.randrange(1000)) & 0xFFFF, unit, good)
        else:  # wrong_function
            if rng.random() < 0.5:
                out = _frame(tid, unit, bytes([(good[0] % 16) + 1]) + good[1:])
            else:
                out = _frame(tid, unit, bytes([good[0], (good[1] + 7) & 0xFF]) + good[2:])
        writer.write(out)
        await writer.drain()
