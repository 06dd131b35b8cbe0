"""First start in Chromium: no user exists, so every page shows the administrator setup; there is
no default password, a short or mistyped one is refused, the one-time setup code the gateway
wrote to its data folder is needed (a wrong one is refused), and setting one signs the admin in."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect

from edge.app import Gateway
from edge.config.loader import load_site
from edge.dashboard.setup_code import read_setup_code
from tests.browser.conftest import XHR, screenshot
from tests.support import free_port

pytestmark = pytest.mark.asyncio(loop_scope="package")

DEADLINE_MS = 30_000

SITE = """\
site: {{id: fresh-estate, name: Fresh Estate, name_zh: 新建小区, timezone: Asia/Shanghai}}
gateway: {{id: gw-fresh, data_dir: {data}}}
buses:
  - {{id: control-room, type: modbus_tcp, host: 127.0.0.1, port: {modbus}, timeout_ms: 300, retries: 0}}
devices:
  - {{id: fire-panel, bus: control-room, unit: 1, profile: fire-panel-modbus, building: T1, floor: "1"}}
dashboard:
  listen: 127.0.0.1:{port}
"""


@pytest_asyncio.fixture(loop_scope="package")
async def fresh_gateway() -> AsyncIterator[tuple[str, Path]]:
    """A real gateway on its first start (its fire panel is unreachable: nothing listens)."""
    tmp = Path(tempfile.mkdtemp(prefix="gh-setup-"))
    try:
        path = tmp / "site.yaml"
        path.write_text(
            SITE.format(data=tmp / "data", modbus=free_port(), port=free_port()), encoding="utf-8"
        )
        async with Gateway(load_site(path)) as gateway:
            run = asyncio.create_task(gateway.run(), name="gateway")
            try:
                assert gateway.dashboard is not None
                yield str(gateway.dashboard.url), gateway.site.data_dir
            finally:
                gateway.stop()
                await run
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def test_first_start_makes_the_administrator_choose_a_password(
    browser: Browser, fresh_gateway: tuple[str, Path]
) -> None:
    url, data_dir = fresh_gateway
    code = read_setup_code(data_dir)
    assert code is not None
    context = await browser.new_context(base_url=url, locale="zh-CN", viewport={"width": 1366, "height": 768})
    page = await context.new_page()
    await page.goto("/#/login")
    # Any page leads to the setup while no user exists.
    await expect(page.get_by_test_id("setup-submit")).to_be_visible(timeout=DEADLINE_MS)
    assert page.url.endswith("#/setup")
    error = page.get_by_test_id("setup-error")
    await page.get_by_test_id("setup-code").fill("AAAA-BBBB-CCCC")  # not the code the gateway wrote
    await page.get_by_test_id("setup-username").fill("chief")
    await page.get_by_test_id("setup-name").fill("消防控制室主任")
    await page.get_by_test_id("setup-password").fill("short")
    await page.get_by_test_id("setup-password2").fill("short")
    await page.get_by_test_id("setup-submit").click()
    await expect(error).to_contain_text("至少 8 位")
    await page.get_by_test_id("setup-password").fill("Control-room-2026")
    await page.get_by_test_id("setup-password2").fill("Control-room-2027")
    await page.get_by_test_id("setup-submit").click()
    await expect(error).to_contain_text("不一致")
    await screenshot(page, "00-setup")
    await page.get_by_test_id("setup-password2").fill("Control-room-2026")
    await page.get_by_test_id("setup-submit").click()
    await expect(error).to_contain_text("设置码不正确")
    await page.get_by_test_id("setup-code").fill(code.lower())  # as typed from the console
    await page.get_by_test_id("setup-submit").click()
    # Signed in as the new administrator, on the duty view.
    await expect(page.get_by_test_id("alarm-list")).to_be_visible(timeout=DEADLINE_MS)
    await expect(page.get_by_test_id("nav-admin")).to_be_visible()
    # This site's fire panel has nothing behind it: not "all normal" but a communication fault.
    fault = page.locator('[data-testid="comm-fault-row"][data-id="fire-panel"]')
    await expect(fault).to_be_visible(timeout=DEADLINE_MS)
    await expect(page.get_by_test_id("no-alarms")).to_have_count(0)
    await context.close()
    # Setup happens once.
    assert read_setup_code(data_dir) is None  # used up: the file is gone
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        response = await client.post(
            "/api/setup", json={"username": "x", "password": "another-password", "code": code}, headers=XHR
        )
        assert response.status_code == 409, response.text
