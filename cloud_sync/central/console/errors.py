"""The console's error answers: ``{"error": code, ...}`` like the LAN dashboard's."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

__all__ = ["ConsoleError", "console_error_handler"]


class ConsoleError(Exception):
    """Answered as ``status`` with ``{"error": error, **extra}`` and ``headers``."""

    def __init__(
        self, status: int, error: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(error)
        self.status = status
        self.body = {"error": error, **extra}
        self.headers = headers


async def console_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConsoleError)
    return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)
