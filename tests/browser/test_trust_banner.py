"""The revocation banner in Chromium: once central has revoked this gateway, every view says so
in the duty staff's language, and it goes away when the notice is gone (a new enrolment).
Screenshot: tests/artifacts/screenshots/trust-revoked.png."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import ADMIN, Estate, login, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="package")

DEADLINE_MS = 30_000


class _Revoked:
    """What the dashboard reads of the command executor after a ``gateway.revoked`` command
    (the command itself is tested in tests/integration/identity/test_revoked_dashboard.py)."""

    def __init__(self, reason: str) -> None:
        self.revoked: dict[str, Any] = {"reason": reason, "at": time.time(), "cid": "c-1", "by": "admin-wang"}


async def test_a_revoked_gateway_says_so_on_every_view(estate: Estate) -> None:
    gateway: Any = estate.gateway
    had = getattr(gateway, "commands", None)
    gateway.commands = _Revoked("设备被盗")
    try:
        context = await estate.context()
        page = await context.new_page()
        await login(page, ADMIN[0], ADMIN[1])
        banner = page.get_by_test_id("revoked-banner")
        await expect(banner).to_be_visible(timeout=DEADLINE_MS)
        await expect(page.get_by_test_id("revoked-title")).to_have_text("本网关已被中心吊销")
        await expect(page.get_by_test_id("revoked-reason")).to_contain_text("设备被盗")
        for view in ("nav-site", "nav-health"):
            await page.get_by_test_id(view).click()
            await expect(banner).to_be_visible()
        await screenshot(page, "trust-revoked")
    finally:
        gateway.commands = had

    # The notice gone (enrolled again): the next load of the trust state takes the banner away.
    async with page.expect_response("**/api/trust") as answer:
        await page.reload()
    assert (await (await answer.value).json())["revoked"] is None
    await expect(page.get_by_test_id("revoked-banner")).to_be_hidden()
    await context.close()
