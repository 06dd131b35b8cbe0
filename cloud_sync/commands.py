"""Commands from central to one gateway: the body codec, the replay window, the result. Pure.

A command travels as a signed downlink message of kind ``"cmd"`` (``cloud_sync.downlink``):
central's Ed25519 signature covers the gateway id, the key id and this body, so a command cannot
be altered, moved to another gateway, or forged without central's key, which the gateway pinned
when it was enrolled. The body (docs/protocol.md §9) is a msgpack map::

    {v: 1, cid: str, cseq: uint, issued_at: float, not_after: float,
     action: str, args: map, by: str, from: str}

* ``cid`` names the command in results and audit rows (central makes it unique);
* ``cseq`` is central's per-gateway command sequence. The gateway accepts each number once and
  nothing older than :data:`WINDOW` below the highest it has accepted, so a captured command
  replayed later is refused (``replay``) while two commands that overtake each other on the way
  both run;
* ``not_after`` bounds how long a command may wait (a write queued during an outage must not
  fire hours later): past it the gateway refuses it as ``expired``; a ``not_after`` more than
  :data:`MAX_LIFETIME_S` ahead is refused as ``bad_expiry``;
* ``by`` and ``from`` are the operator and where they acted (an IP address, a system name), shown
  on the LAN dashboard beside what the command did.

Actions and their ``args``:

===================  =============================================================================
``alarm.ack``        ``{key: str, comment?: str}``
``alarm.shelve``     ``{key: str, until: float (epoch s), reason: str}``
``point.write``      ``{point: str (point id), value: bool|int|float|str}`` — refused while a
                     fire linkage holds the point
``outbox.resend``    ``{lane: "telemetry"|"event", first: uint, last: uint}``
``log.level``        ``{level: "debug"|"info"|"warning"|"error", minutes: 1..1440}``
``config.push``      ``{text: str (the whole site file, ≤ 1 MiB UTF-8), version: str,
                     health_s: 10..900}`` — checked as ``gatehouse check`` does, applied
                     atomically, rolled back unless healthy within ``health_s``
``gateway.revoked``  ``{reason: str}`` — central revoked this gateway (sent just before its broker
                     access is cut): the gateway remembers it and shows it on the LAN dashboard
===================  =============================================================================

The gateway answers every command it could authenticate with a ``command.result`` event (status
``done``, ``refused`` or ``failed`` and a detail), which travels back on the event lane like any
alarm, so central sees the result exactly once even across outages.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import msgpack

from cloud_sync.errors import EnvelopeError
from cloud_sync.wire import Limits, bounded_unpackb

__all__ = [
    "ACTIONS",
    "KIND_CMD",
    "MAX_LIFETIME_S",
    "MAX_SITE_BYTES",
    "RESULT_KIND",
    "SYSTEM_ACTIONS",
    "WINDOW",
    "Command",
    "CommandResult",
    "ReplayWindow",
    "decode_command",
    "encode_command",
]

KIND_CMD: Final = "cmd"
RESULT_KIND: Final = "command.result"
# What an operator may ask a gateway to do (central's command API offers exactly these).
ACTIONS: Final = ("alarm.ack", "alarm.shelve", "point.write", "outbox.resend", "log.level", "config.push")
# What central itself sends, never on an operator's request: revocation notice (the trust code).
SYSTEM_ACTIONS: Final = ("gateway.revoked",)
_ALL_ACTIONS: Final = ACTIONS + SYSTEM_ACTIONS
WINDOW: Final = 256
MAX_LIFETIME_S: Final = 86_400.0
_MAX_UINT64: Final = 2**64 - 1
_TEXT_MAX: Final = 512
# A pushed site file; the largest real sites (2,000 devices) are about 400 KB of YAML.
MAX_SITE_BYTES: Final = 1024 * 1024
_LIMITS: Final = Limits(array=8, map=16, str=MAX_SITE_BYTES, bin=0)
_LEVELS: Final = ("debug", "info", "warning", "error")
_LANES: Final = ("telemetry", "event")

Status = Literal["done", "refused", "failed"]


@dataclass(frozen=True, slots=True)
class Command:
    cid: str
    cseq: int
    issued_at: float
    not_after: float
    action: str
    args: Mapping[str, Any]
    by: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What the gateway reports for one command (the data of a ``command.result`` event)."""

    cid: str
    cseq: int
    action: str
    status: Status
    detail: str = ""
    value: Any = None
    by: str = ""
    source: str = ""

    def as_event_data(self) -> dict[str, Any]:
        data = {
            "cid": self.cid,
            "cseq": self.cseq,
            "action": self.action,
            "status": self.status,
            "detail": self.detail,
            "by": self.by,
            "from": self.source,
        }
        if self.value is not None:
            data["value"] = self.value
        return data


def encode_command(command: Command) -> bytes:
    """The body central signs; checked on the way out as strictly as on the way in."""
    body = {
        "v": 1,
        "cid": command.cid,
        "cseq": command.cseq,
        "issued_at": float(command.issued_at),
        "not_after": float(command.not_after),
        "action": command.action,
        "args": dict(command.args),
        "by": command.by,
        "from": command.source,
    }
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    decode_command(packed)  # refuse to sign what a gateway would refuse to read
    return packed


def _bad(message: str) -> EnvelopeError:
    return EnvelopeError(message, reason="malformed")


def _text(raw: Any, name: str, *, empty: bool = False) -> str:
    if not isinstance(raw, str) or len(raw) > _TEXT_MAX or (not raw and not empty):
        raise _bad(
            f"{name} must be {'a' if empty else 'a non-empty'} string of at most {_TEXT_MAX} characters"
        )
    return raw


def _number(raw: Any, name: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise _bad(f"{name} must be a finite number")
    return float(raw)


def _uint(raw: Any, name: str, *, low: int = 0) -> int:
    if type(raw) is not int or not low <= raw <= _MAX_UINT64:
        raise _bad(f"{name} must be an integer ≥ {low}")
    return raw


def _args(action: str, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise _bad("args must be a map with string keys")
    allowed = {
        "alarm.ack": {"key", "comment"},
        "alarm.shelve": {"key", "until", "reason"},
        "point.write": {"point", "value"},
        "outbox.resend": {"lane", "first", "last"},
        "log.level": {"level", "minutes"},
        "config.push": {"text", "version", "health_s"},
        "gateway.revoked": {"reason"},
    }[action]
    extra = set(raw) - allowed
    if extra:
        raise _bad(f"{action}: unknown argument(s) {sorted(extra)}")
    out: dict[str, Any] = {}
    if action == "alarm.ack":
        out["key"] = _text(raw.get("key"), "key")
        out["comment"] = _text(raw.get("comment", ""), "comment", empty=True)
    elif action == "alarm.shelve":
        out["key"] = _text(raw.get("key"), "key")
        out["until"] = _number(raw.get("until"), "until")
        out["reason"] = _text(raw.get("reason"), "reason")
    elif action == "point.write":
        out["point"] = _text(raw.get("point"), "point")
        value = raw.get("value")
        if isinstance(value, float):
            value = _number(value, "value")
        elif isinstance(value, str):
            value = _text(value, "value", empty=True)
        elif not isinstance(value, bool) and type(value) is not int:
            raise _bad("value must be a bool, a number or a string")
        out["value"] = value
    elif action == "outbox.resend":
        lane = raw.get("lane")
        if lane not in _LANES:
            raise _bad(f"lane must be one of {_LANES}")
        first, last = _uint(raw.get("first"), "first", low=1), _uint(raw.get("last"), "last", low=1)
        if last < first or last - first >= 1_000_000:
            raise _bad("resend range must be first ≤ last, at most 1,000,000 batches")
        out.update(lane=lane, first=first, last=last)
    elif action == "config.push":
        text = raw.get("text")
        if not isinstance(text, str) or not text.strip() or len(text.encode()) > MAX_SITE_BYTES:
            raise _bad(f"text must be the site file, 1 byte … {MAX_SITE_BYTES} bytes")
        health_s = raw.get("health_s", 120)
        if type(health_s) is not int or not 10 <= health_s <= 900:
            raise _bad("health_s must be an integer 10 … 900")
        out.update(text=text, version=_text(raw.get("version"), "version"), health_s=health_s)
    elif action == "gateway.revoked":
        out["reason"] = _text(raw.get("reason"), "reason")
    else:
        level = raw.get("level")
        if level not in _LEVELS:
            raise _bad(f"level must be one of {_LEVELS}")
        minutes = raw.get("minutes")
        if type(minutes) is not int or not 1 <= minutes <= 1440:
            raise _bad("minutes must be an integer 1 … 1440")
        out.update(level=level, minutes=minutes)
    return out


def decode_command(body: bytes) -> Command:
    """Parse and check a command body (already authenticated by its downlink signature)."""
    raw = bounded_unpackb(body, _LIMITS, "command", max_containers=4)
    if not isinstance(raw, dict):
        raise _bad("a command body must be a map")
    if raw.get("v") != 1 or type(raw.get("v")) is not int:
        raise EnvelopeError(f"unsupported command version {raw.get('v')!r}", reason="unsupported_version")
    action = raw.get("action")
    if action not in _ALL_ACTIONS:
        raise _bad(f"unknown action {str(action)[:40]!r}; one of {_ALL_ACTIONS}")
    return Command(
        cid=_text(raw.get("cid"), "cid"),
        cseq=_uint(raw.get("cseq"), "cseq", low=1),
        issued_at=_number(raw.get("issued_at"), "issued_at"),
        not_after=_number(raw.get("not_after"), "not_after"),
        action=str(action),
        args=_args(str(action), raw.get("args")),
        by=_text(raw.get("by"), "by"),
        source=_text(raw.get("from", ""), "from", empty=True),
    )


@dataclass
class ReplayWindow:
    """Which command numbers were already accepted: the highest, and the recent ones below it.

    A number is accepted once; one more than :data:`WINDOW` below the highest is refused too,
    since the set no longer remembers whether it ran. The state is small enough to persist
    after every accepted command (``to_dict``/``from_dict``).
    """

    highest: int = 0
    seen: set[int] = field(default_factory=set)

    def check(self, command: Command, now: float) -> str | None:
        """Why ``command`` must be refused now (``replay``, ``expired``, ``bad_expiry``), or None."""
        if command.cseq in self.seen or command.cseq <= self.highest - WINDOW:
            return "replay"
        if now > command.not_after:
            return "expired"
        if command.not_after - now > MAX_LIFETIME_S:
            return "bad_expiry"
        return None

    def accept(self, command: Command) -> None:
        self.seen.add(command.cseq)
        self.highest = max(self.highest, command.cseq)
        floor = self.highest - WINDOW
        self.seen = {n for n in self.seen if n > floor}

    def to_dict(self) -> dict[str, Any]:
        return {"highest": self.highest, "seen": sorted(self.seen)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ReplayWindow:
        highest = raw.get("highest", 0)
        seen = raw.get("seen", [])
        if type(highest) is not int or not isinstance(seen, list) or not all(type(n) is int for n in seen):
            raise ValueError("command window record is damaged")
        return cls(highest, {n for n in seen if n > highest - WINDOW})
