"""Every main view in Chromium against the running estate, with a screenshot of each
(tests/artifacts/screenshots/): site tree with live values, device trend, zone map, health,
history and statistics, technician and administration views, and the phone layout."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import ADMIN, USERS, XHR, Estate, login, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="package")

DEADLINE_MS = 30_000
# The simulated lifts move, so a value is any one of the point's Chinese labels (not English).
_LIFT_DOOR_ZH = re.compile(r"^(关门|开门|正在关门|正在开门)$")
_LIFT_DIRECTION_ZH = re.compile(r"^(停止|上行|下行)$")
_LIFT_MODE_ZH = re.compile(r"^(自动|主电源断电|停止服务|检修|消防返回|消防员操作|应急电源|地震)$")


async def admin_page(estate: Estate, *, width: int = 1366, height: int = 768) -> Page:
    context = await estate.context(width=width, height=height)
    page = await context.new_page()
    await login(page, ADMIN[0], ADMIN[1])
    return page


async def test_site_view_shows_devices_with_live_values(estate: Estate) -> None:
    page = await admin_page(estate)
    await page.get_by_test_id("nav-site").click()
    tree = page.get_by_test_id("site-tree")
    await expect(tree).to_be_visible(timeout=DEADLINE_MS)
    devices = len(estate.gateway.site.devices)
    await expect(page.get_by_test_id("device-row")).to_have_count(devices, timeout=DEADLINE_MS)
    # Enum values read in Chinese in the Chinese interface (the lift moves, so any of its labels).
    lift = page.locator('[data-testid="device-row"][data-device="lift-t3-a"]')  # in Chinese mode
    door = lift.locator(f'[data-testid="point-value"][data-point="{estate.site_id}/lift-t3-a/door_state"]')
    await expect(door).to_have_text(_LIFT_DOOR_ZH, timeout=DEADLINE_MS)
    direction = lift.locator(
        f'[data-testid="point-value"][data-point="{estate.site_id}/lift-t3-a/direction"]'
    )
    await expect(direction).to_have_text(_LIFT_DIRECTION_ZH, timeout=DEADLINE_MS)
    panel = page.locator('[data-testid="device-row"][data-device="fire-panel"]')
    point = f"{estate.site_id}/fire-panel/zone5_fire"
    cell = panel.locator(f'[data-testid="point-value"][data-point="{point}"]')
    await expect(cell).to_have_class("pv q-good", timeout=DEADLINE_MS)
    await expect(cell).to_have_text("否")
    # A value pushed by SSE changes the cell in place, without reloading the tree.
    await page.evaluate("window.__noReload = true")
    await estate.inject("fire-panel", "fire", zone=5)
    await expect(cell).to_have_text("是", timeout=DEADLINE_MS)
    assert await page.evaluate("window.__noReload === true")
    await expect(panel).to_have_class("dev st-alarm", timeout=DEADLINE_MS)
    await screenshot(page, "07-site")
    # ... and in English in the English interface. The switch is saved as the user's language,
    # so it is switched back (after the server has the first change) for the other tests.
    async with page.expect_response("**/api/me/lang"):
        await page.locator("#lang-switch").click()
    await expect(door).to_have_text(re.compile(r"^(closed|open|closing|opening)$"), timeout=DEADLINE_MS)
    await expect(direction).to_have_text(re.compile(r"^(stopped|up|down)$"), timeout=DEADLINE_MS)
    async with page.expect_response("**/api/me/lang"):
        await page.locator("#lang-switch").click()
    await expect(direction).to_have_text(_LIFT_DIRECTION_ZH, timeout=DEADLINE_MS)
    # The zone map marks the zone of the fire (pumproom is the panel's zone 5).
    await page.get_by_test_id("nav-zones").click()
    cards = page.get_by_test_id("zone-cards")
    await expect(cards).to_be_visible(timeout=DEADLINE_MS)
    card = cards.locator('[data-testid="zone-card"][data-zone="pumproom"]')
    await expect(card).to_have_attribute("data-alarm", "fire")
    await expect(card).to_have_attribute("data-state", "fire")
    # Only the zones the estate uses: not the panel's own zones 6-8 that nothing is wired to.
    await expect(cards.locator('[data-zone="6"]')).to_have_count(0)
    await screenshot(page, "08-zones")
    await page.context.close()


async def test_device_detail_with_trend(estate: Estate) -> None:
    page = await admin_page(estate)
    await page.goto("/#/device/water-tank-b")
    chart = page.get_by_test_id("trend-chart")
    await expect(chart).to_be_visible(timeout=DEADLINE_MS)
    # The rolling history fills as the gateway polls; the chart draws it.
    await expect(chart.locator("polyline")).to_have_count(1, timeout=60_000)
    await page.get_by_test_id("trend-range-24h").click()
    await expect(page.get_by_test_id("trend-range-24h")).to_have_class("btn active")
    await expect(chart.locator("polyline")).to_have_count(1, timeout=DEADLINE_MS)
    await expect(page.get_by_test_id("device-points")).to_contain_text("m")
    await screenshot(page, "09-device")
    # A lift's enum points read in Chinese in the device detail too.
    await page.goto("/#/device/lift-t3-a")
    door = page.locator(f'[data-testid="point-value"][data-point="{estate.site_id}/lift-t3-a/door_state"]')
    await expect(door).to_have_text(_LIFT_DOOR_ZH, timeout=DEADLINE_MS)
    mode = page.locator(f'[data-testid="point-value"][data-point="{estate.site_id}/lift-t3-a/event_code"]')
    await expect(mode).to_have_text(_LIFT_MODE_ZH, timeout=DEADLINE_MS)
    # An enum alarm's value reads as its Chinese label in the alarm rows, here and on the duty
    # view (a fresh page there: the duty view fetches the points' enums after its first render).
    await estate.inject("lift-t3-a", "out_of_service")
    try:
        await expect(mode).to_have_text("停止服务", timeout=DEADLINE_MS)
        row = page.locator('[data-testid="alarm-row"][data-key*="lift-t3-a/event_code"]')
        await expect(row).to_contain_text("= 停止服务", timeout=DEADLINE_MS)
        await page.goto("/#/duty")
        await page.reload()
        await expect(row).to_contain_text("= 停止服务", timeout=DEADLINE_MS)
    finally:
        await estate.clear("lift-t3-a")
    await page.context.close()


async def test_health_view(estate: Estate) -> None:
    page = await admin_page(estate)
    await page.get_by_test_id("nav-health").click()
    await expect(page.get_by_test_id("health-uplink")).to_be_visible(timeout=DEADLINE_MS)
    await expect(page.get_by_test_id("health-outbox")).to_contain_text("遥测数据")
    await expect(page.get_by_test_id("health-devices").locator("tbody tr")).to_have_count(
        len(estate.gateway.site.devices)
    )
    await screenshot(page, "10-health")
    await page.context.close()


async def test_history_and_statistics(estate: Estate) -> None:
    page = await admin_page(estate)
    # Something to find: a supervisory signal, raised and cleared.
    await estate.inject("fire-panel", "supervisory", zone=1)
    await expect(page.locator('[data-testid="alarm-row"][data-class="supervisory"]')).to_have_count(
        1, timeout=DEADLINE_MS
    )
    await estate.clear("fire-panel")
    await page.get_by_test_id("nav-history").click()
    await expect(page.get_by_test_id("history-row").first).to_be_visible(timeout=DEADLINE_MS)
    await page.locator('select[name="class"]').select_option("supervisory")
    await page.get_by_test_id("history-search").click()
    await expect(page.get_by_test_id("history-row").first).to_contain_text("监管", timeout=DEADLINE_MS)
    href = await page.get_by_test_id("history-csv").get_attribute("href")
    assert href is not None and href.startswith("/api/alarms/history.csv?") and "class=supervisory" in href
    csv = await page.evaluate(
        "async (u) => { const r = await fetch(u); return [r.status, await r.text()]; }", href
    )
    assert csv[0] == 200 and "监管" in csv[1], csv
    await screenshot(page, "11-history")
    await page.get_by_test_id("nav-stats").click()
    await expect(page.get_by_test_id("stats-bars")).to_be_visible(timeout=DEADLINE_MS)
    await expect(page.get_by_test_id("stats-pie").locator("path, circle")).not_to_have_count(0)
    await expect(page.get_by_test_id("stats-top")).to_be_visible()
    await screenshot(page, "12-stats")
    await page.context.close()


async def test_technician_view_write_and_inject(estate: Estate) -> None:
    context = await estate.context()
    page = await context.new_page()
    await login(page, "tech", USERS["tech"][1])
    await page.get_by_test_id("nav-tech").click()
    await page.get_by_test_id("tech-device").select_option("fire-panel")
    await expect(page.get_by_test_id("tech-points")).to_contain_text("zone1_fire", timeout=DEADLINE_MS)
    # Scenario injection, behind a confirmation.
    await page.get_by_test_id("tech-inject-device").select_option("fire-panel")
    await page.get_by_test_id("tech-inject-scenario").select_option("fault")
    await page.get_by_test_id("tech-inject-params").fill('{"zone": 6}')
    await page.get_by_test_id("tech-inject").click()
    await expect(page.get_by_test_id("confirm-dialog")).to_be_visible()
    await page.get_by_test_id("dialog-ok").click()
    key = f"{estate.site_id}/fire-panel/zone6_fault/fault"
    await expect(page.get_by_test_id("toast").first).to_be_visible(timeout=DEADLINE_MS)
    await page.get_by_test_id("nav-duty").click()
    await expect(page.locator(f'[data-key="{key}"]')).to_be_visible(timeout=DEADLINE_MS)
    await page.go_back()
    # The configuration check runs the real checker.
    await page.get_by_test_id("tech-check").click()
    await expect(page.get_by_test_id("tech-check-ok")).to_be_visible(timeout=DEADLINE_MS)
    await screenshot(page, "13-tech")
    await context.close()
    await estate.clear("fire-panel")


async def test_technician_test_write_needs_confirmation(estate: Estate) -> None:
    context = await estate.context()
    page = await context.new_page()
    await login(page, "tech", USERS["tech"][1])
    await page.goto("/#/tech/smoke-fan-t1")
    select = page.get_by_test_id("tech-write-point")
    await expect(select.locator("option").first).to_be_attached(timeout=DEADLINE_MS)
    point = await select.locator("option").first.get_attribute("value")
    assert point
    await page.get_by_test_id("tech-write-value").fill("true")
    await page.get_by_test_id("tech-write").click()
    # Cancelling writes nothing; confirming writes and shows the read-back value.
    await page.get_by_test_id("dialog-cancel").click()
    await expect(page.get_by_test_id("confirm-dialog")).to_have_count(0)
    await expect(page.locator("#twrite-result")).to_have_text("")
    await page.get_by_test_id("tech-write").click()
    await page.get_by_test_id("dialog-ok").click()
    await expect(page.locator("#twrite-result")).not_to_have_text("", timeout=DEADLINE_MS)
    await context.close()


async def test_admin_users_and_audit(estate: Estate) -> None:
    page = await admin_page(estate)
    await page.get_by_test_id("nav-admin").click()
    table = page.get_by_test_id("users-table")
    await expect(table.get_by_test_id("user-row")).to_have_count(1 + len(USERS), timeout=DEADLINE_MS)
    await page.get_by_test_id("user-add").click()
    await page.get_by_test_id("user-username").fill("night")
    await page.get_by_test_id("user-role").select_option("operator")
    await page.get_by_test_id("user-password").fill("Night-shift-2026")
    await page.get_by_test_id("dialog-ok").click()
    night = table.locator('[data-user="night"]')
    await expect(night).to_contain_text("值班员", timeout=DEADLINE_MS)
    # Three wrong passwords lock the new account; the administrator unlocks it here.
    async with estate.client() as client:
        for attempt in range(3):
            body = {"username": "night", "password": f"wrong-{attempt}"}
            await client.post("/api/login", json=body, headers=XHR)
        locked = await client.post(
            "/api/login", json={"username": "night", "password": "Night-shift-2026"}, headers=XHR
        )
        assert locked.status_code == 423, locked.text
    await page.reload()
    await expect(night).to_contain_text("已锁定", timeout=DEADLINE_MS)
    await screenshot(page, "14-admin-users")
    await night.locator("[data-edit]").click()
    await expect(page.get_by_test_id("user-dialog").locator('input[name="unlock"]')).to_be_checked()
    await page.get_by_test_id("dialog-ok").click()
    await expect(night).not_to_contain_text("已锁定", timeout=DEADLINE_MS)
    async with estate.client() as client:
        response = await client.post(
            "/api/login", json={"username": "night", "password": "Night-shift-2026"}, headers=XHR
        )
        assert response.status_code == 200, response.text
    await page.get_by_test_id("nav-audit").click()
    audit = page.get_by_test_id("audit-table")
    await expect(audit.get_by_test_id("audit-row").first).to_be_visible(timeout=DEADLINE_MS)
    await expect(audit).to_contain_text("新增用户")
    await expect(audit).to_contain_text("127.0.0.1")
    await screenshot(page, "15-admin-audit")
    await page.context.close()


async def test_phone_layout_has_no_horizontal_scroll(estate: Estate) -> None:
    await estate.inject("fire-panel", "fault", zone=7)
    page = await admin_page(estate, width=390, height=844)
    await expect(page.get_by_test_id("alarm-row").first).to_be_visible(timeout=DEADLINE_MS)
    for route, ready in (("#/duty", "alarm-row"), ("#/site", "device-row"), ("#/health", "health-devices")):
        await page.goto(f"/{route}")
        await expect(page.get_by_test_id(ready).first).to_be_visible(timeout=DEADLINE_MS)
        width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], (route, width)
    await page.goto("/#/duty")
    await expect(page.get_by_test_id("alarm-row").first).to_be_visible(timeout=DEADLINE_MS)
    await screenshot(page, "16-phone-duty")
    await page.context.close()
    await estate.clear("fire-panel")
