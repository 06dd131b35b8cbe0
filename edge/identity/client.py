"""The HTTPS calls to central's enrolment routes (httpx): a synchronous one for the CLI, an
asynchronous one for the daemon's renewal task. TLS is always verified: against ``ca_file`` when
given (a private CA), else against the system's trust store."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = ["CentralError", "CentralUnreachable", "Refused", "api_url", "post", "post_async", "tls_context"]

_TIMEOUT_S = 30.0


class CentralError(Exception):
    """Central answered, but not with a grant or a refusal (400, 5xx, not JSON)."""


class CentralUnreachable(CentralError):
    """No answer at all: DNS, TCP, TLS or a timeout. Worth retrying."""


class Refused(CentralError):
    """403 from central: ``error`` (``token_refused``/``renew_refused``) and its ``reason``."""

    def __init__(self, error: str, reason: str) -> None:
        super().__init__(f"{error.replace('_', ' ')}: {reason}")
        self.error = error
        self.reason = reason


def api_url(base: str, path: str) -> str:
    return base.rstrip("/") + path


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    if ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise CentralError(f"{ca_file}: cannot use as a CA file: {exc}") from exc


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 200 and isinstance(body, dict):
        return body
    if response.status_code == 403 and isinstance(body, dict):
        raise Refused(str(body.get("error", "refused")), str(body.get("reason", "unknown")))
    detail = body if body is not None else response.text[:200]
    raise CentralError(f"central answered {response.status_code}: {detail}")


def post(base: str, path: str, body: dict[str, Any], *, ca_file: Path | None) -> dict[str, Any]:
    import httpx  # noqa: PLC0415 - httpx and click are ~3 MB the polling daemon never needs

    try:
        with httpx.Client(verify=tls_context(ca_file), timeout=_TIMEOUT_S) as client:
            response = client.post(api_url(base, path), json=body)
    except httpx.TransportError as exc:
        raise CentralUnreachable(f"cannot reach {base}: {exc}") from exc
    return _answer(response)


async def post_async(base: str, path: str, body: dict[str, Any], *, ca_file: Path | None) -> dict[str, Any]:
    import httpx  # noqa: PLC0415 - loaded on the first renewal, not at every daemon start

    try:
        async with httpx.AsyncClient(verify=tls_context(ca_file), timeout=_TIMEOUT_S) as client:
            response = await client.post(api_url(base, path), json=body)
    except httpx.TransportError as exc:
        raise CentralUnreachable(f"cannot reach {base}: {exc}") from exc
    return _answer(response)
