"""The duty page as a fire control panel (issue 18) against a real ``gatehouse run``: drill mode,
the fire indication lit until reset with the first alarm and the count, names and places from
the site file, the zone view on a 390 px phone, the linkage summary and manual restore/start.

Screens: tests/artifacts/screenshots/panel-*.png.
"""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import ADMIN, XHR, screenshot
from tests.browser.daemon import DutySite
from tests.browser.test_link import open_duty

pytestmark = pytest.mark.asyncio(loop_scope="package")

DEADLINE_MS = 30_000
FIRE5 = "tower-b/fire-panel/zone5_fire/fire"
FIRE4 = "tower-b/fire-panel/zone4_fire/fire"


async def reset_panel(duty: DutySite, page: Page, keys: list[str]) -> None:
    """Detectors quiet, panel reset, then each latched alarm reset by the operator."""
    await duty.clear("fire-panel")
    duty.sim.device("fire-panel").model.apply_write("reset", True)
    for key in keys:
        row = page.locator(f'[data-testid="alarm-row"][data-key="{key}"]')
        await expect(row).to_have_attribute("data-state", "latched", timeout=DEADLINE_MS)
        if await row.get_by_test_id("alarm-ack").count():
            await row.get_by_test_id("alarm-ack").click()
        await row.get_by_test_id("alarm-reset").click()
        await expect(row).to_have_count(0, timeout=DEADLINE_MS)


async def audit_actions(duty: DutySite) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=duty.daemon.url, timeout=30.0) as client:
        response = await client.post(
            "/api/login", json={"username": ADMIN[0], "password": ADMIN[1]}, headers=XHR
        )
        assert response.status_code == 200, response.text
        rows = (await client.get("/api/admin/audit", params={"limit": 200})).json()
    return list(rows.get("rows", rows.get("entries", [])))


async def test_drill_marks_alarms_and_holds_linkage(browser: Browser, duty: DutySite) -> None:
    context, page, errors = await open_duty(browser, duty)
    linkage = page.get_by_test_id("linkage-panel")
    await linkage.get_by_test_id("drill-zone").select_option("5")
    start = linkage.get_by_test_id("drill-start")
    await start.click()
    await expect(start).to_have_text("再次点击确认")  # nothing happens on one click
    await expect(page.get_by_test_id("drill-bar")).to_have_count(0)
    await start.click()
    bar = page.get_by_test_id("drill-bar")
    await expect(bar).to_be_visible(timeout=DEADLINE_MS)
    await expect(bar).to_contain_text("B座1-3层")
    await expect(bar).to_contain_text("联动不执行")

    await duty.inject("fire-panel", "fire", zone=5)
    await duty.inject("fire-panel", "fire", zone=5)  # two detectors: the linkage trigger holds
    row = page.locator(f'[data-testid="alarm-row"][data-key="{FIRE5}"]')
    await expect(row).to_have_attribute("data-drill", "1", timeout=DEADLINE_MS)
    await expect(row.get_by_test_id("drill-tag")).to_have_text("演习")
    await expect(page.get_by_test_id("fire-count")).to_have_text("演习火警 1")
    rule = page.locator('[data-testid="linkage-rule"][data-rule="fire-z5"]')
    await expect(rule).to_contain_text("联动已暂停", timeout=DEADLINE_MS)
    await expect(rule).to_have_attribute("data-state", "idle")
    await screenshot(page, "panel-01-drill")

    end = page.get_by_test_id("drill-end")
    await end.click()
    await end.click()
    await expect(bar).to_have_count(0, timeout=DEADLINE_MS)
    # The history (and so the CSV and the centre) says it was a drill.
    history = await page.evaluate("fetch('/api/alarms/history?limit=50').then((r) => r.json())")
    raised = [h for h in history["rows"] if h["key"] == FIRE5 and h["transition"] == "raised"]
    assert raised and raised[0]["drill"] is True, raised
    await reset_panel(duty, page, [FIRE5])
    await expect(rule).not_to_contain_text("联动已暂停", timeout=DEADLINE_MS)
    actions = {str(a.get("action")) for a in await audit_actions(duty)}
    assert {"drill_start", "drill_end"} <= actions, actions
    await context.close()
    assert not errors, errors


async def test_fire_indication_names_zones_and_linkage(browser: Browser, duty: DutySite) -> None:
    context, page, errors = await open_duty(browser, duty)
    banner = page.get_by_test_id("alarm-banner")
    await duty.inject("fire-panel", "fire", zone=5)
    await duty.inject("fire-panel", "fire", zone=5)
    row5 = page.locator(f'[data-testid="alarm-row"][data-key="{FIRE5}"]')
    await expect(row5).to_be_visible(timeout=DEADLINE_MS)
    # Names and places from the site file, not ids.
    await expect(row5).to_contain_text("B座1-3层")
    await expect(row5).to_contain_text("火灾报警控制器")
    await expect(row5).to_contain_text("fire control room 101")
    await expect(banner.get_by_test_id("fire-count")).to_have_text("火警 1")
    await expect(banner.get_by_test_id("fire-first")).to_contain_text("B座1-3层")

    # The linkage of zone 5 ran: what it holds now, by device, in words.
    rule = page.locator('[data-testid="linkage-rule"][data-rule="fire-z5"]')
    await expect(rule).to_have_attribute("data-state", "done", timeout=DEADLINE_MS)
    summary = rule.get_by_test_id("linkage-summary")
    await expect(summary).to_contain_text("门禁 2/2")
    await expect(summary).to_contain_text("已释放")
    await expect(summary).to_contain_text("道闸")
    await expect(summary).to_contain_text("已抬起")
    await expect(summary).to_contain_text("充电桩")
    await expect(summary).to_contain_text("0 A")

    # A second zone: the count goes up, the first alarm stays the first.
    await duty.inject("fire-panel", "fire", zone=4)
    await expect(banner.get_by_test_id("fire-count")).to_have_text("火警 2", timeout=DEADLINE_MS)
    await expect(banner.get_by_test_id("fire-first")).to_contain_text("B座1-3层")
    await screenshot(page, "panel-02-two-fires")
    # Acknowledged is not reset: the indication stays lit, the sounder stops.
    await page.get_by_test_id("alarm-ack-all").click()
    await page.get_by_test_id("dialog-ok").click()
    await expect(page.locator("body")).to_have_attribute("data-beeping", "0", timeout=DEADLINE_MS)
    await expect(banner).to_be_visible()
    await expect(banner.get_by_test_id("fire-count")).to_have_text("火警 2")

    # The CSV export names the zone and the device.
    csv = await page.evaluate("fetch('/api/alarms/history.csv').then((r) => r.text())")
    assert "B座1-3层" in csv and "火灾报警控制器" in csv and "zone_name" in csv, csv[:500]

    # Manual restore, on a second click: the rule restores and stays held off while the fire holds.
    restore = rule.get_by_test_id("linkage-restore")
    await restore.click()
    await expect(restore).to_have_text("再次点击确认")
    await restore.click()
    await expect(rule).to_have_attribute("data-state", "idle", timeout=DEADLINE_MS)
    await expect(rule).to_contain_text("联动已暂停")
    # And a manual start brings it back.
    start = rule.get_by_test_id("linkage-start")
    await start.click()
    await start.click()
    await expect(rule).to_have_attribute("data-state", "done", timeout=DEADLINE_MS)
    actions = {str(a.get("action")) for a in await audit_actions(duty)}
    assert {"linkage_manual_restore", "linkage_manual_start"} <= actions, actions
    await screenshot(page, "panel-03-linkage")

    # The zone view on a 390 px phone: only the site's three zones, zone 5 and 4 in fire.
    phone, phone_page, phone_errors = await open_duty(browser, duty, width=390)
    await phone_page.get_by_test_id("nav-zones").click()
    cards = phone_page.get_by_test_id("zone-card")
    await expect(cards).to_have_count(3, timeout=DEADLINE_MS)
    await expect(phone_page.locator('[data-testid="zone-card"][data-zone="5"]')).to_have_attribute(
        "data-state", "fire"
    )
    await expect(phone_page.locator('[data-testid="zone-card"][data-zone="4"]')).to_have_attribute(
        "data-state", "fire"
    )
    await expect(phone_page.locator('[data-testid="zone-card"][data-zone="5"]')).to_contain_text("B座1-3层")
    await expect(phone_page.get_by_test_id("zone-plan")).to_be_visible()
    layout = await phone_page.evaluate(
        """() => ({scroll: document.documentElement.scrollWidth,
                  h3: parseFloat(getComputedStyle(document.querySelector('.zcard h3')).fontSize),
                  state: parseFloat(getComputedStyle(document.querySelector('.zcard .zstate')).fontSize)})"""
    )
    assert layout["scroll"] <= 392 and layout["h3"] >= 16 and layout["state"] >= 15, layout
    await screenshot(phone_page, "panel-04-zones-390")
    await phone.close()
    assert not phone_errors, phone_errors

    await reset_panel(duty, page, [FIRE5, FIRE4])
    await expect(banner).to_be_hidden(timeout=DEADLINE_MS)
    await context.close()
    assert not errors, errors
