"""The demo's gateway joins central the way a real one does, and central then talks back.

* :func:`ensure_enrolled`: unless central already knows the gateway and its identity folder is
  there, ask central's API for a one-time token and run ``gatehouse enroll URL TOKEN`` as a child
  process (docs/trust.md). Central signs the gateway's certificate with the demo CA, adds its
  broker password and ACL block and reloads the broker; the gateway pins central's keys and
  encrypts its batches to central.
* :func:`round_trip`: once values flow, one signed command (``log.level``) and one configuration
  push of the running site file, each followed until the gateway's result reaches central.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from edge.demo.layout import DemoPaths

__all__ = ["EnrolmentError", "RoundTrip", "ensure_enrolled", "round_trip"]

_ENROLL_TIMEOUT_S = 120.0
_COMMAND_DEADLINE_S = 60.0
# The push is applied by a validated reload; the gateway reports done once devices poll again.
_PUSH_HEALTH_S = 120
_PUSH_DEADLINE_S = 240.0


class EnrolmentError(Exception):
    """Central refused or could not be asked; the message says what happened."""


def _identity_id(paths: DemoPaths) -> str | None:
    try:
        data = json.loads((paths.identity / "identity.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    gateway = data.get("gateway_id") if isinstance(data, dict) else None
    return gateway if isinstance(gateway, str) else None


async def _enrolled_at_central(http: httpx.AsyncClient, central: str, gateway_id: str) -> bool:
    response = await http.get(f"{central}/api/v1/trust/gateways")
    if not response.is_success:
        raise EnrolmentError(f"central's trust API answered {response.status_code}: {response.text}")
    return any(gw["id"] == gateway_id and gw["status"] == "enrolled" for gw in response.json())


async def ensure_enrolled(
    http: httpx.AsyncClient, central: str, paths: DemoPaths, gateway_id: str, *, log: Path
) -> bool:
    """Enrol ``gateway_id`` unless it already is; True when this call enrolled it."""
    if _identity_id(paths) == gateway_id and await _enrolled_at_central(http, central, gateway_id):
        return False
    response = await http.post(
        f"{central}/api/v1/enrollment-tokens",
        json={"gateway_id": gateway_id, "name": "make demo", "expires_in_s": 600},
    )
    if response.status_code != 201:
        raise EnrolmentError(f"central issued no token ({response.status_code}): {response.text}")
    token = response.json()["token"]
    argv = [sys.executable, "-m", "edge", "enroll", central, token, "--dir", str(paths.identity), "--force"]
    with log.open("ab") as out:
        child = await asyncio.create_subprocess_exec(*argv, stdout=out, stderr=asyncio.subprocess.STDOUT)
        try:
            code = await asyncio.wait_for(child.wait(), _ENROLL_TIMEOUT_S)
        except TimeoutError:
            child.kill()
            await child.wait()
            raise EnrolmentError(f"gatehouse enroll did not finish in {_ENROLL_TIMEOUT_S:.0f} s") from None
    if code != 0:
        tail = (await asyncio.to_thread(log.read_text, errors="replace")).splitlines()[-5:]
        raise EnrolmentError(f"gatehouse enroll exited with {code}:\n" + "\n".join(tail))
    return True


@dataclass(frozen=True, slots=True)
class RoundTrip:
    what: str
    state: str
    seconds: float
    detail: str


async def _follow(
    http: httpx.AsyncClient, central: str, issued: httpx.Response, what: str, deadline_s: float
) -> RoundTrip:
    started = time.monotonic()
    if issued.status_code != 202:
        return RoundTrip(what, "not sent", 0.0, f"{issued.status_code}: {issued.text}")
    cid = issued.json()["cid"]
    row: dict[str, Any] = issued.json()
    while time.monotonic() - started < deadline_s:
        response = await http.get(f"{central}/api/v1/commands/{cid}")
        if response.is_success:
            row = response.json()
            if row["state"] not in ("pending",):
                break
        await asyncio.sleep(0.2)
    detail = str(row.get("detail") or "")
    return RoundTrip(what, str(row["state"]), time.monotonic() - started, detail)


async def round_trip(
    http: httpx.AsyncClient, central: str, paths: DemoPaths, gateway_id: str, say: Callable[[str], None]
) -> list[RoundTrip]:
    """A command and a configuration push to the running gateway, each until its result is back."""
    results = []
    issued = await http.post(
        f"{central}/api/v1/gateways/{gateway_id}/commands",
        json={"action": "log.level", "args": {"level": "info", "minutes": 5}, "ttl_s": 120},
    )
    results.append(await _follow(http, central, issued, "command log.level", _COMMAND_DEADLINE_S))
    say(_line(results[-1]))
    version = time.strftime("demo-%Y%m%d-%H%M%S")
    issued = await http.post(
        f"{central}/api/v1/gateways/{gateway_id}/config",
        json={
            "text": await asyncio.to_thread(paths.site.read_text, encoding="utf-8"),
            "version": version,
            "health_s": _PUSH_HEALTH_S,
            "ttl_s": 600,
        },
    )
    results.append(await _follow(http, central, issued, f"configuration push {version}", _PUSH_DEADLINE_S))
    say(_line(results[-1]))
    return results


def _line(result: RoundTrip) -> str:
    detail = f" ({result.detail})" if result.detail else ""
    return f"round trip: {result.what} -> {result.state} in {result.seconds:.1f} s{detail}"
