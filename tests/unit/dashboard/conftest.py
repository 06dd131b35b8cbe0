from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.dashboard import DashboardServer, enter_dashboard
from edge.dashboard.setup_code import read_setup_code
from tests.unit.dashboard.fakes import FakeGateway, make_gateway

XHR = {"X-Requested-With": "gatehouse"}
ADMIN = {"username": "admin", "password": "correct horse 1", "name": "管理员", "phone": "13800000000"}
# dashboard URL -> its data folder, where the one-time setup code is written at start
_DATA_DIRS: dict[str, Path] = {}


@dataclass
class Running:
    gateway: FakeGateway
    server: DashboardServer
    client: httpx.AsyncClient

    def new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.server.url, timeout=30.0)


async def start(
    tmp_path: Path, dashboard: dict[str, Any] | None = None, extra_devices: list[dict[str, Any]] | None = None
) -> AsyncIterator[Running]:
    gateway = make_gateway(tmp_path, dashboard, extra_devices)
    async with AsyncExitStack() as stack:
        assert gateway.site.config.dashboard is not None
        server = await enter_dashboard(stack, gateway.site.config.dashboard, gateway=gateway)
        _DATA_DIRS[server.url] = gateway.site.data_dir
        stack.callback(_DATA_DIRS.pop, server.url, None)
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=server.url, timeout=30.0))
        yield Running(gateway, server, client)


@pytest.fixture
async def dash(tmp_path: Path) -> AsyncIterator[Running]:
    async for running in start(tmp_path):
        yield running


def setup_code(client: httpx.AsyncClient, data_dir: Path | None = None) -> str:
    """The setup code the dashboard behind ``client`` wrote to its data folder at start."""
    folder = data_dir if data_dir is not None else _DATA_DIRS[str(client.base_url).rstrip("/")]
    code = read_setup_code(folder)
    assert code is not None, f"no setup code in {folder}"
    return code


async def setup_admin(
    client: httpx.AsyncClient, data_dir: Path | None = None, admin: dict[str, Any] | None = None
) -> str:
    """Create the first administrator with the setup code (from ``data_dir``, or the folder of a
    dashboard started by :func:`start`); returns the CSRF token of its session."""
    body = {**(admin or ADMIN), "code": setup_code(client, data_dir)}
    response = await client.post("/api/setup", json=body, headers=XHR)
    assert response.status_code == 201, response.text
    return str(response.json()["csrf"])


async def login(client: httpx.AsyncClient, username: str, password: str) -> str:
    response = await client.post("/api/login", json={"username": username, "password": password}, headers=XHR)
    assert response.status_code == 200, response.text
    return str(response.json()["csrf"])


async def add_user(client: httpx.AsyncClient, csrf: str, username: str, role: str, **extra: Any) -> None:
    body = {"username": username, "password": f"{username}-password", "role": role, **extra}
    response = await client.post("/api/admin/users", json=body, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 201, response.text
