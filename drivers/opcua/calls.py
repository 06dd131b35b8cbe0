"""Calling asyncua with a deadline and translating what it raises into ``core.errors`` at this
one boundary, with the operator's next step for the refusals a retry alone will not fix."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable
from typing import TypeVar

from asyncua import ua
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from core.errors import ConnectionLost, DeviceError, DeviceTimeout, FramingError, TransportError

__all__ = ["LinkRefused", "call", "status_name"]

_T = TypeVar("_T")


class LinkRefused(TransportError):
    """The server (or our trust list) refused the connection for a reason that retrying alone
    will not fix: the message says what to change."""


_REFUSAL_HINTS: dict[int, str] = {
    0x801F0000: "check username and password_file (or the server's user list)",
    0x80210000: "the server does not accept this identity type; change 'identity'",
    0x80200000: "the server rejected the identity token; check username/password or user certificate",
    0x80540000: "the server refuses this security mode (a None-policy session to a secure-only server?)",
    0x80550000: "the server refuses this security policy; change security_policy",
    0x80170000: "the gateway certificate's URI does not match application_uri",
    0x801A0000: "the server does not trust the gateway certificate: add it to the server's trusted list",
    0x80120000: "the server rejected the gateway certificate as invalid",
    0x80140000: "the gateway certificate is expired or not yet valid",
}


async def call(awaitable: Awaitable[_T], *, timeout_s: float, refusal: bool = False) -> _T:
    """Await an asyncua call with a deadline, translating its errors into ``core.errors``:
    a timeout → ``DeviceTimeout``, a dead socket → ``ConnectionLost``, garbage →
    ``FramingError``, a Bad service result → ``DeviceError`` (or ``LinkRefused`` while
    connecting, for security and identity refusals)."""
    try:
        return await asyncio.wait_for(awaitable, timeout_s)
    except TimeoutError as exc:
        raise DeviceTimeout(f"no answer within {timeout_s:g} s") from exc
    except UaStatusCodeError as exc:
        code = int(exc.code) if getattr(exc, "code", None) is not None else 0
        name = status_name(code) if code else type(exc).__name__
        hint = _REFUSAL_HINTS.get(code & 0xFFFF0000)
        if refusal and hint is not None:
            raise LinkRefused(f"server refused the session ({name}): {hint}") from exc
        if refusal:
            raise ConnectionLost(f"server refused the session: {name}") from exc
        raise DeviceError(f"server answered {name}", code=code) from exc
    except (ConnectionError, OSError) as exc:
        raise ConnectionLost(str(exc) or type(exc).__name__) from exc
    except (UaError, ValueError, struct.error, EOFError, IndexError, KeyError, UnicodeDecodeError) as exc:
        # asyncua raises these while decoding bytes that are not OPC UA.
        raise FramingError(f"unreadable answer: {type(exc).__name__}: {exc}") from exc


def status_name(code: int) -> str:
    """``BadNodeIdUnknown`` for 0x80340000 (the symbolic name of a StatusCode)."""
    return ua.StatusCode(ua.UInt32(code)).name
