"""Unknown is not normal (issue 18, GB 4717): the duty page against a real ``gatehouse run``
child process that is stopped, frozen (SIGSTOP: the event stream stalls without closing) and
brought back; an offline bus as a communication fault; resynchronisation before "normal".

Every screen is kept in tests/artifacts/screenshots/link-*.png.
"""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, expect

from tests.browser.conftest import USERS, login, screenshot
from tests.browser.daemon import DutySite

pytestmark = pytest.mark.asyncio(loop_scope="package")

DEADLINE_MS = 30_000
FIRE5 = "tower-b/fire-panel/zone5_fire/fire"


async def open_duty(
    browser: Browser, site: DutySite, *, width: int = 1366, user: str = "duty"
) -> tuple[BrowserContext, Page, list[str]]:
    context = await browser.new_context(
        base_url=site.daemon.url,
        locale="zh-CN",
        viewport={"width": width, "height": 800},
        extra_http_headers={"Accept-Language": "zh-CN"},
    )
    errors: list[str] = []
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await login(page, user, USERS[user][1])
    await expect(page.locator("body")).to_have_attribute("data-link", "live", timeout=DEADLINE_MS)
    return context, page, errors


async def test_offline_bus_is_a_communication_fault_not_silence(browser: Browser, duty: DutySite) -> None:
    context, page, errors = await open_duty(browser, duty)
    # The roof bus has no converter behind it: both fans on it are offline, shown as one bus row.
    row = page.locator('[data-testid="comm-fault-row"][data-kind="bus"][data-id="roof"]')
    await expect(row).to_be_visible(timeout=60_000)
    await expect(row).to_contain_text("通讯故障")
    await expect(row).to_contain_text("roof")
    await expect(page.get_by_test_id("no-alarms")).to_have_count(0)
    await expect(page.get_by_test_id("count-fault")).to_contain_text("1")
    await screenshot(page, "link-01-comm-fault")
    await context.close()
    assert not errors, errors


async def test_gateway_stop_shows_state_unknown_then_resyncs(browser: Browser, duty: DutySite) -> None:
    context, page, errors = await open_duty(browser, duty)
    await duty.inject("fire-panel", "fire", zone=5)
    row = page.locator(f'[data-testid="alarm-row"][data-key="{FIRE5}"]')
    await expect(row).to_be_visible(timeout=DEADLINE_MS)
    await row.get_by_test_id("alarm-ack").click()
    await expect(row).to_have_attribute("data-state", "acknowledged", timeout=DEADLINE_MS)

    # The zone view, open when the link goes: zone 5 in fire (highlighted), the others normal.
    await page.get_by_test_id("nav-zones").click()
    card5 = page.locator('[data-testid="zone-card"][data-zone="5"]')
    card4 = page.locator('[data-testid="zone-card"][data-zone="4"]')
    await expect(card5).to_have_attribute("data-state", "fire", timeout=DEADLINE_MS)
    await expect(card4).to_have_attribute("data-state", "normal")

    await duty.daemon.stop()
    bar = page.get_by_test_id("conn-lost-banner")
    await expect(bar).to_be_visible(timeout=DEADLINE_MS)
    # No zone reads "normal" any more: unknown, and the fire stays shown, marked stale.
    await expect(card4).to_have_attribute("data-state", "unknown")
    await expect(card4).to_contain_text("状态未知")
    await expect(card5).to_have_attribute("data-state", "fire")
    await expect(card5).to_contain_text("断线前状态")
    await screenshot(page, "link-02-zones-unknown")
    await page.get_by_test_id("nav-duty").click()
    await expect(bar).to_be_visible(timeout=DEADLINE_MS)
    await expect(bar).to_contain_text("与网关失去连接")
    await expect(bar).to_contain_text("状态未知")
    # The last known alarm stays, marked stale; nothing says "normal"; a fault tone sounds.
    await expect(row).to_be_visible()
    await expect(row).to_have_attribute("data-stale", "1")
    await expect(page.get_by_test_id("stale-note")).to_be_visible()
    await expect(page.get_by_test_id("no-alarms")).to_have_count(0)
    await expect(page.locator("body")).to_have_attribute("data-tone", "fault")
    await expect(page.locator("#unacked-badge")).to_have_text("0?")
    await screenshot(page, "link-02-duty-unknown")
    # Silence stops the tone only: the bar stays.
    await page.get_by_test_id("nolink-silence").click()
    await expect(page.locator("body")).to_have_attribute("data-beeping", "0")
    await expect(bar).to_be_visible()

    # While the gateway is down the world moves on: the fire is gone from the detector and a
    # fault appears in zone 6. Back up, the page shows the present state, not the old one.
    await duty.clear("fire-panel")
    await duty.inject("fire-panel", "fault", zone=6)
    await duty.daemon.start()
    await expect(bar).to_be_hidden(timeout=DEADLINE_MS)
    await expect(page.locator("body")).to_have_attribute("data-link", "live")
    fault6 = page.locator('[data-testid="alarm-row"][data-key="tower-b/fire-panel/zone6_fault/fault"]')
    await expect(fault6).to_be_visible(timeout=DEADLINE_MS)
    await expect(fault6).to_have_attribute("data-stale", "0")
    # The fire alarm latches (GB 4717): still shown, awaiting reset, the indication still lit.
    await expect(row).to_have_attribute("data-stale", "0", timeout=DEADLINE_MS)
    await expect(page.get_by_test_id("alarm-banner")).to_be_visible()
    await screenshot(page, "link-03-resynced")
    await duty.clear("fire-panel")
    await context.close()
    assert not errors, errors


async def test_stalled_stream_is_noticed_and_resync_comes_before_normal(
    browser: Browser, duty: DutySite
) -> None:
    context, page, errors = await open_duty(browser, duty)
    bar = page.get_by_test_id("conn-lost-banner")
    await expect(bar).to_be_hidden()
    # Freeze the gateway: its sockets stay open and say nothing (a stalled network path).
    duty.daemon.pause()
    try:
        # heartbeat_s is 1 in this site: three missed beats and a second of grace.
        await expect(bar).to_be_visible(timeout=15_000)
        await expect(bar).to_contain_text("与网关失去连接")
        await screenshot(page, "link-04-stream-stalled")
        # Hold the snapshot the page asks for after reconnecting: until it is here the page
        # must not go back to "live" or call anything normal.
        release = asyncio.Event()
        held: list[str] = []

        async def hold(route: Route) -> None:
            held.append(route.request.url)
            await release.wait()
            await route.continue_()

        await page.route("**/api/alarms", hold)
    finally:
        duty.daemon.resume()
    await expect(page.locator("body")).to_have_attribute("data-link", "resync", timeout=DEADLINE_MS)
    await expect(bar).to_be_visible()
    await expect(bar).to_contain_text("正在同步")
    await expect(page.get_by_test_id("no-alarms")).to_have_count(0)
    assert held, "the page asked for no snapshot after reconnecting"
    await screenshot(page, "link-05-resyncing")
    release.set()  # from now on the handler lets every request through
    await expect(page.locator("body")).to_have_attribute("data-link", "live", timeout=DEADLINE_MS)
    await expect(bar).to_be_hidden()
    await context.close()
    assert not errors, errors
