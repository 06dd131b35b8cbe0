"""Communication faults a simulated device can show, and what each does to one answer.

The decision is pure (``plan``): the servers ask it what to do with a response and then do it.
Faults are per device, so a TCP-to-RTU bridge can have one silent unit among healthy ones.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["FAULT_SCENARIOS", "GATEWAY_TARGET_FAILED", "Answer", "FaultState", "noise", "plan"]

FAULT_SCENARIOS: dict[str, str] = {
    "comm_loss": "the device stops answering (cable cut, power lost); bridge=true: its TCP-to-RTU "
    "bridge answers exception 11 after delay_ms (default 500) instead",
    "slow": "every answer is delayed by delay_ms (default 1500 ms)",
    "exception": "every request is answered with Modbus exception code (default 4, device failure)",
    "garbage": "answers are replaced by corrupt frames (bad CRC on RTU, noise on TCP)",
}


@dataclass(slots=True)
class FaultState:
    comm_loss: bool = False
    bridge_answers_ms: float | None = None
    slow_ms: float = 0.0
    exception_code: int | None = None
    garbage: bool = False

    def active(self) -> dict[str, dict[str, float | int]]:
        out: dict[str, dict[str, float | int]] = {}
        if self.comm_loss:
            out["comm_loss"] = (
                {} if self.bridge_answers_ms is None else {"bridge": True, "delay_ms": self.bridge_answers_ms}
            )
        if self.slow_ms:
            out["slow"] = {"delay_ms": self.slow_ms}
        if self.exception_code is not None:
            out["exception"] = {"code": self.exception_code}
        if self.garbage:
            out["garbage"] = {}
        return out

    def inject(self, name: str, params: dict[str, object]) -> None:
        if name == "comm_loss":
            self.comm_loss = True
            bridge = params.get("bridge", False)
            self.bridge_answers_ms = float(str(params.get("delay_ms", 500))) if bridge else None
        elif name == "slow":
            self.slow_ms = float(str(params.get("delay_ms", 1500)))
        elif name == "exception":
            code = int(str(params.get("code", 4)))
            if not 1 <= code <= 0x0B:
                raise ValueError("a Modbus exception code is 1..11")
            self.exception_code = code
        elif name == "garbage":
            self.garbage = True
        else:
            raise ValueError(f"no fault '{name}'")

    def clear(self, name: str | None = None) -> list[str]:
        was = list(self.active())
        if name in (None, "comm_loss"):
            self.comm_loss = False
            self.bridge_answers_ms = None
        if name in (None, "slow"):
            self.slow_ms = 0.0
        if name in (None, "exception"):
            self.exception_code = None
        if name in (None, "garbage"):
            self.garbage = False
        return [n for n in was if n not in self.active()]


@dataclass(frozen=True, slots=True)
class Answer:
    """What to send back: nothing (``payload is None``), or ``payload`` after ``delay_s``.

    ``exception_code`` set means "answer with this exception instead of the real PDU";
    ``corrupt`` means "mangle the frame on the way out" (each transport knows how).
    """

    delay_s: float
    send: bool
    exception_code: int | None = None
    corrupt: bool = False


GATEWAY_TARGET_FAILED = 0x0B


def plan(state: FaultState) -> Answer:
    if state.comm_loss:
        if state.bridge_answers_ms is not None:
            # What a TCP-to-RTU bridge says once its own serial timeout has passed.
            return Answer(state.bridge_answers_ms / 1000.0, send=True, exception_code=GATEWAY_TARGET_FAILED)
        return Answer(0.0, send=False)
    return Answer(
        delay_s=state.slow_ms / 1000.0,
        send=True,
        exception_code=state.exception_code,
        corrupt=state.garbage,
    )


def noise(rng: random.Random, length: int) -> bytes:
    return bytes(rng.randrange(256) for _ in range(length))
