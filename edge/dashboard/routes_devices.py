"""Batch device management for administrators (R5.3): placeholder, filled in below."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(prefix="/api/admin/devices")
