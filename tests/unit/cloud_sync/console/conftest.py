"""A bare FastAPI app with central's console mounted and one probe route under /api/v1 that
reports the principal the console installed (central's own routes are S's tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from cloud_sync.central.console import mount_console
from cloud_sync.central.console.context import SETUP_CODE_FILE, ConsoleContext
from cloud_sync.webauth.setup_code import read_setup_code

XHR = {"X-Requested-With": "gatehouse"}
ADMIN = {"username": "root", "password": "Root-pass-2026", "name": "平台管理员"}


@dataclass
class Console:
    app: FastAPI
    ctx: ConsoleContext
    data_dir: Path
    clock: list[float]

    def client(self, ip: str = "10.0.0.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(ip, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://central.test", timeout=30.0)


def build(data_dir: Path) -> Console:
    app = FastAPI()
    clock = [1_800_000_000.0]
    monotonic = [100.0]

    @app.get("/api/v1/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        principal = request.app.state.session_principal(request)
        if principal is None:
            return {"principal": None}
        estates = sorted(principal.estates) if principal.estates is not None else None
        return {"principal": {"name": principal.name, "scopes": sorted(principal.scopes), "estates": estates,
                              "source": principal.source}}  # fmt: skip

    @app.post("/api/v1/whoami")
    async def whoami_post(request: Request) -> dict[str, Any]:
        return await whoami(request)

    ctx = mount_console(app, data_dir=data_dir, clock=lambda: clock[0], monotonic=lambda: monotonic[0])
    return Console(app, ctx, data_dir, clock)


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    built = build(tmp_path / "central")
    try:
        yield built
    finally:
        built.ctx.close()


def setup_code(console: Console) -> str:
    code = read_setup_code(console.data_dir, file_name=SETUP_CODE_FILE)
    assert code is not None
    return code


async def admin_client(console: Console) -> httpx.AsyncClient:
    """A client signed in as the first administrator (created with the setup code)."""
    client = console.client()
    response = await client.post(
        "/console/api/setup", json={**ADMIN, "code": setup_code(console)}, headers=XHR
    )
    assert response.status_code == 201, response.text
    return client


def csrf(client: httpx.AsyncClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies["ghc_csrf"], **XHR}
