"""The device management screen (R5.3) against a real ``gatehouse run`` child process.

An administrator filters the roof bus, selects what is shown, disables both fans with two
clicks, sees them disabled once the gateway has reloaded, is refused by the loader for a door
that a fire linkage writes to, enables the fans again, arms a delete without confirming it,
downloads the device sheet, and finds it all in the audit log. The site file on disk is checked
after each step. Screens: tests/artifacts/screenshots/devices-*.png.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from edge.config.loader import load_site
from edge.site_io import decode_csv, import_rows
from tests.browser.conftest import ADMIN, login, screenshot
from tests.browser.daemon import DutySite

pytestmark = pytest.mark.asyncio(loop_scope="package")

DEADLINE_MS = 30_000
FANS = ("fan-b-roof-1", "fan-b-roof-2")


async def enabled_in_file(site: Path) -> dict[str, bool]:
    loaded = await asyncio.to_thread(load_site, site)
    return {d.id: d.config.enabled for d in loaded.devices}


async def select_shown(page: Page, n: int) -> None:
    await expect(page.get_by_test_id("devices-row")).to_have_count(n, timeout=DEADLINE_MS)
    await page.get_by_test_id("devices-select-filtered").click()
    await expect(page.get_by_test_id("devices-selected")).to_contain_text(f"已选 {n} 台")


async def confirm(page: Page, action: str, armed_text: str) -> None:
    button = page.get_by_test_id(f"devices-{action}")
    await button.click()
    await expect(button).to_have_text(armed_text)
    await button.click()


async def test_disable_enable_through_the_screen(browser: Browser, duty: DutySite) -> None:
    context = await browser.new_context(
        base_url=duty.daemon.url,
        locale="zh-CN",
        viewport={"width": 1366, "height": 800},
        extra_http_headers={"Accept-Language": "zh-CN"},
    )
    errors: list[str] = []
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    site = duty.daemon.site
    await login(page, *ADMIN)
    await page.get_by_test_id("nav-devices").click()
    rows = page.get_by_test_id("devices-row")
    await expect(rows).to_have_count(7, timeout=DEADLINE_MS)
    await expect(page.get_by_test_id("devices-summary")).to_contain_text("共 7 台，停用 0 台")

    # The roof bus's converter is dead: disable its two fans.
    await page.get_by_test_id("devices-bus").select_option("roof")
    await select_shown(page, 2)
    await confirm(page, "disable", "再次点击：停用 2 台")
    result = page.get_by_test_id("devices-result")
    await expect(result).to_have_attribute("data-outcome", "ok", timeout=DEADLINE_MS)
    await expect(result).to_contain_text("已停用 2 台设备")
    await expect(result).to_contain_text("共 7 台，运行 5 台，停用 2 台")
    for fan in FANS:
        row = page.locator(f'[data-testid="devices-row"][data-device="{fan}"]')
        await expect(row).to_have_attribute("data-enabled", "false")
        await expect(row.get_by_test_id("devices-enabled")).to_have_text("否")
    await page.get_by_test_id("devices-bus").select_option("")
    await expect(rows).to_have_count(7)
    await screenshot(page, "devices-01-disabled")
    in_file = await enabled_in_file(site)
    assert [d for d, on in in_file.items() if not on] == list(FANS)
    listed = await page.request.get("/api/admin/devices")
    assert {d["id"]: d["enabled"] for d in (await listed.json())["devices"]} == in_file

    # A door the zone-5 linkage writes to cannot be disabled: the loader says why, nothing changes.
    await page.get_by_test_id("devices-search").fill("door-b-stair")
    await select_shown(page, 1)
    await confirm(page, "disable", "再次点击：停用 1 台")
    await expect(result).to_have_attribute("data-outcome", "refused", timeout=DEADLINE_MS)
    await expect(result).to_contain_text("配置校验未通过")
    await expect(result).to_contain_text("unknown point 'door-b-stair.release'")
    await screenshot(page, "devices-02-refused")
    assert (await enabled_in_file(site))["door-b-stair"] is True
    await page.get_by_test_id("devices-select-none").click()

    # Enable them again, found by their state.
    await page.get_by_test_id("devices-search").fill("")
    await page.get_by_test_id("devices-state").select_option("disabled")
    await select_shown(page, 2)
    await confirm(page, "enable", "再次点击：启用 2 台")
    await expect(result).to_contain_text("已启用 2 台设备", timeout=DEADLINE_MS)
    await expect(result).to_contain_text("共 7 台，运行 7 台，停用 0 台")
    await expect(rows).to_have_count(0)  # the "disabled" filter now shows nothing
    await page.get_by_test_id("devices-state").select_option("")
    await expect(page.locator('[data-testid="devices-row"][data-enabled="false"]')).to_have_count(0)
    assert all((await enabled_in_file(site)).values())

    # A delete asks twice and says the history stays; not confirmed here, so nothing happens.
    await page.get_by_test_id("devices-search").fill("charger")
    await select_shown(page, 1)
    await page.get_by_test_id("devices-delete").click()
    await expect(page.get_by_test_id("devices-delete")).to_have_text("再次点击：删除 1 台")
    await expect(page.get_by_test_id("devices-warning")).to_contain_text("保留 180 天")
    await screenshot(page, "devices-03-delete-armed")
    await page.get_by_test_id("devices-select-none").click()
    await expect(page.get_by_test_id("devices-delete")).to_have_text("删除")
    assert "charger-b1" in await enabled_in_file(site)

    # The sheet download is the gatehouse export sheet of this site file.
    async with page.expect_download() as info:
        await page.get_by_test_id("devices-export").click()
    download = await info.value
    sheet = await asyncio.to_thread(Path(await download.path()).read_bytes)
    assert sheet.startswith(b"\xef\xbb\xbf")
    assert [d["id"] for d in import_rows(decode_csv(sheet)).devices] == list(in_file)

    await page.get_by_test_id("nav-audit").click()
    audit = page.get_by_test_id("audit-table")
    await expect(audit.get_by_test_id("audit-row").first).to_be_visible(timeout=DEADLINE_MS)
    fans = ",".join(FANS)
    for action, target, outcome in (
        ("停用设备", fans, "ok"),
        ("停用设备", "door-b-stair", "refused"),
        ("启用设备", fans, "ok"),
        ("导出设备表", "site.yaml", "ok"),
    ):
        row = audit.get_by_test_id("audit-row").filter(has_text=action).filter(has_text=target)
        await expect(row.first).to_contain_text(outcome)
        await expect(row.first).to_contain_text("admin")
    await expect(audit.get_by_test_id("audit-row").filter(has_text="删除设备")).to_have_count(0)
    await context.close()
    assert not errors, errors
