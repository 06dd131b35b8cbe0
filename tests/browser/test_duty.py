"""Duty staff in Chromium: sign in, a fire injected at the simulator appears live (no reload),
sounds and flashes, is acknowledged; lockout, CSRF, the viewer's limits and the language switch."""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.async_api import expect

from tests.browser.conftest import ADMIN, SCREENSHOTS, USERS, Estate, login, screenshot
from tests.support import wait_until

pytestmark = pytest.mark.asyncio(loop_scope="package")

DEADLINE_MS = 30_000


async def test_first_start_setup_is_done_and_login_page_shows(estate: Estate) -> None:
    context = await estate.context()
    page = await context.new_page()
    await page.goto("/")
    # An administrator exists (made by the fixture through /api/setup): sign-in, not setup.
    await expect(page.get_by_test_id("login-submit")).to_be_visible(timeout=DEADLINE_MS)
    assert await page.evaluate("document.documentElement.lang") == "zh-CN"
    await expect(page.get_by_test_id("login-submit")).to_have_text("登录")
    await screenshot(page, "01-login")
    await context.close()


async def test_fire_alarm_appears_live_sounds_and_is_acknowledged(estate: Estate) -> None:
    context = await estate.context()
    page = await context.new_page()
    await login(page, "duty", USERS["duty"][1])
    # Marks this page instance: a reload would lose it.
    await page.evaluate("window.__noReload = true")
    await expect(page.get_by_test_id("alarm-banner")).to_be_hidden()

    key = f"{estate.site_id}/fire-panel/zone3_fire/fire"
    row = page.locator(f'[data-testid="alarm-row"][data-key="{key}"]')
    started = time.monotonic()
    await estate.inject("fire-panel", "fire", zone=3)
    await expect(row).to_be_visible(timeout=DEADLINE_MS)
    seconds = time.monotonic() - started
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS.parent / "fire_alarm_latency.json").write_text(json.dumps({"inject_to_row_s": seconds}))
    print(f"fire alarm on screen {seconds:.2f} s after injection")

    assert await page.evaluate("window.__noReload === true"), "the page reloaded"
    await expect(row).to_have_attribute("data-state", "unacknowledged")
    await expect(row).to_have_class(re.compile(r"\bflash\b"))
    banner = page.get_by_test_id("alarm-banner")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("火警")
    # The WebAudio sounder is running.
    await expect(page.locator("body")).to_have_attribute("data-beeping", "1")
    await screenshot(page, "02-duty-fire")

    await row.get_by_test_id("alarm-ack").click()
    # Fire alarms latch: acknowledged while the panel still reports fire.
    await expect(row).to_have_attribute("data-state", "acknowledged", timeout=DEADLINE_MS)
    await expect(row.get_by_test_id("alarm-ack")).to_have_count(0)
    # A panel's fire indication: acknowledged is not reset. The banner stays lit, the tone stops.
    await expect(page.locator("body")).to_have_attribute("data-beeping", "0")
    await expect(banner).to_be_visible()
    await expect(banner.get_by_test_id("fire-count")).to_have_text("火警 1")

    # The acknowledgement went through the real rules engine, with the operator's name.
    rows = {r["key"]: r for r in estate.gateway.alarms.active_alarms()}
    assert rows[key]["unacked"] is False
    history = estate.gateway.alarms.history(text=None, limit=50)
    assert any(h["key"] == key and h["transition"] == "acked" and h["by"] == "duty" for h in history), history
    await screenshot(page, "03-duty-acked")

    # The detector goes quiet and the panel is reset (its reset coil, written through the
    # gateway): the alarm stays latched on the dashboard until an operator resets it too.
    await estate.clear("fire-panel")
    await estate.gateway.write("fire-panel", "reset", True, verify=False)
    await expect(row).to_have_attribute("data-state", "latched", timeout=DEADLINE_MS)
    await expect(banner).to_be_visible()
    await row.get_by_test_id("alarm-reset").click()
    await expect(row).to_have_count(0, timeout=DEADLINE_MS)
    await expect(banner).to_be_hidden()
    assert key not in {r["key"] for r in estate.gateway.alarms.active_alarms()}
    await context.close()


async def test_shelve_and_comment_dialogs(estate: Estate) -> None:
    context = await estate.context()
    page = await context.new_page()
    await login(page, "duty", USERS["duty"][1])
    key = f"{estate.site_id}/fire-panel/zone2_fault/fault"
    await estate.inject("fire-panel", "fault", zone=2)
    row = page.locator(f'[data-testid="alarm-row"][data-key="{key}"]')
    await expect(row).to_be_visible(timeout=DEADLINE_MS)

    await row.get_by_test_id("alarm-comment").click()
    await page.get_by_test_id("comment-text").fill("已通知维保单位到场")
    await page.get_by_test_id("dialog-ok").click()
    await wait_until(
        lambda: any(
            h["key"] == key and "维保" in (h.get("comment") or "")
            for h in estate.gateway.alarms.history(limit=50)
        ),
        message="the comment in the alarm history",
    )

    await row.get_by_test_id("alarm-shelve").click()
    dialog = page.get_by_test_id("shelve-dialog")
    await expect(dialog).to_be_visible()
    await screenshot(page, "04-shelve-dialog")
    await page.get_by_test_id("dialog-ok").click()  # no reason given: refused by the form
    await expect(dialog).to_be_visible()
    await page.get_by_test_id("shelve-reason").fill("探测器更换中")
    await page.get_by_test_id("shelve-minutes").select_option("30")
    await page.get_by_test_id("dialog-ok").click()
    await expect(row).to_have_attribute("data-state", "shelved", timeout=DEADLINE_MS)
    shelved = {r["key"]: r for r in estate.gateway.alarms.active_alarms()}[key]
    assert shelved["shelved_until"] is not None and shelved["shelved_until"] > time.time() + 25 * 60
    await row.get_by_test_id("alarm-unshelve").click()
    await expect(row).not_to_have_attribute("data-state", "shelved", timeout=DEADLINE_MS)
    await context.close()
    await estate.clear("fire-panel")


async def test_lockout_after_three_wrong_passwords(estate: Estate) -> None:
    context = await estate.context()
    page = await context.new_page()
    await page.goto("/")
    error = page.get_by_test_id("login-error")
    for attempt in range(3):
        await page.get_by_test_id("login-username").fill("victim")
        await page.get_by_test_id("login-password").fill(f"wrong-{attempt}")
        await page.get_by_test_id("login-submit").click()
        if attempt < 2:
            await expect(error).to_contain_text(f"还可尝试 {2 - attempt} 次", timeout=DEADLINE_MS)
    await expect(error).to_contain_text("锁定", timeout=DEADLINE_MS)
    # Even the right password is refused now.
    await page.get_by_test_id("login-username").fill("victim")
    await page.get_by_test_id("login-password").fill(USERS["victim"][1])
    await page.get_by_test_id("login-submit").click()
    await expect(error).to_contain_text("锁定", timeout=DEADLINE_MS)
    await expect(page.get_by_test_id("alarm-list")).to_have_count(0)
    await screenshot(page, "05-login-locked")
    await context.close()


async def test_post_without_csrf_token_is_refused(estate: Estate) -> None:
    context = await estate.context()
    page = await context.new_page()
    await login(page, "duty", USERS["duty"][1])
    result = await page.evaluate(
        """async () => {
          const bare = await fetch('/api/alarms/ack', {method: 'POST',
                                    headers: {'Content-Type': 'application/json'},
                                    body: JSON.stringify({key: 'x/y/z/a'})});
          const wrong = await fetch('/api/alarms/ack', {method: 'POST',
                                    headers: {'Content-Type': 'application/json', 'X-CSRF-Token': 'forged'},
                                    body: JSON.stringify({key: 'x/y/z/a'})});
          return {bare: bare.status, bareBody: await bare.json(), wrong: wrong.status};
        }"""
    )
    assert result["bare"] == 403 and result["bareBody"]["error"] == "csrf", result
    assert result["wrong"] == 403, result
    await context.close()


async def test_viewer_cannot_acknowledge(estate: Estate) -> None:
    key = f"{estate.site_id}/fire-panel/zone4_fire/fire"
    await estate.inject("fire-panel", "fire", zone=4)
    context = await estate.context()
    page = await context.new_page()
    await login(page, "viewer", USERS["viewer"][1])
    row = page.locator(f'[data-testid="alarm-row"][data-key="{key}"]')
    await expect(row).to_be_visible(timeout=DEADLINE_MS)
    await expect(page.get_by_test_id("alarm-banner")).to_be_visible()
    # Anyone may silence the sounder (消音) in front of them; the banner stays until acknowledged.
    await expect(page.locator("body")).to_have_attribute("data-beeping", "1")
    await page.get_by_test_id("alarm-silence").click()
    await expect(page.locator("body")).to_have_attribute("data-beeping", "0")
    await expect(page.get_by_test_id("alarm-banner")).to_be_visible()
    await expect(row.get_by_test_id("alarm-ack")).to_have_count(0)
    await expect(row.get_by_test_id("alarm-shelve")).to_have_count(0)
    await expect(page.get_by_test_id("alarm-ack-all")).to_have_count(0)
    await expect(page.get_by_test_id("nav-tech")).to_have_count(0)
    await expect(page.get_by_test_id("nav-admin")).to_have_count(0)
    # With a valid CSRF token, the server still refuses: the permission is missing.
    result = await page.evaluate(
        """async (key) => {
          const csrf = document.cookie.split('; ').find((c) => c.startsWith('gh_csrf=')).split('=')[1];
          const r = await fetch('/api/alarms/ack', {method: 'POST',
              headers: {'Content-Type': 'application/json', 'X-CSRF-Token': decodeURIComponent(csrf)},
              body: JSON.stringify({key})});
          return {status: r.status, body: await r.json()};
        }""",
        key,
    )
    assert result["status"] == 403 and result["body"]["error"] == "forbidden", result
    assert {r["key"]: r for r in estate.gateway.alarms.active_alarms()}[key]["unacked"] is True
    await screenshot(page, "06-duty-viewer")
    await context.close()
    # Leave the estate quiet for the other tests.
    async with await estate.context() as admin_context:
        admin = await admin_context.new_page()
        await login(admin, ADMIN[0], ADMIN[1])
        await admin.locator(f'[data-key="{key}"]').get_by_test_id("alarm-ack").click()
        await expect(admin.locator(f'[data-key="{key}"]')).to_have_attribute(
            "data-state", "acknowledged", timeout=DEADLINE_MS
        )
    await estate.clear("fire-panel")


async def test_language_switch(estate: Estate) -> None:
    context = await estate.context(locale="en-US")
    page = await context.new_page()
    await page.goto("/")
    # An English browser gets English.
    await expect(page.get_by_test_id("login-submit")).to_have_text("Sign in", timeout=DEADLINE_MS)
    assert await page.evaluate("document.documentElement.lang") == "en"
    await login(page, "duty", USERS["duty"][1])
    await expect(page.get_by_test_id("nav-duty")).to_contain_text("Duty")
    await expect(page.get_by_test_id("linkage-panel")).to_contain_text("Linkage")
    await screenshot(page, "18-duty-english")
    await page.get_by_test_id("lang-switch").click()
    await expect(page.get_by_test_id("nav-duty")).to_contain_text("值班")
    await expect(page.get_by_test_id("nav-site")).to_contain_text("设备")
    assert await page.evaluate("document.documentElement.lang") == "zh-CN"
    assert await page.evaluate("localStorage.getItem('gh_lang')") == "zh"
    # Stored for the user too: a fresh English browser signs in to Chinese.
    await wait_until(
        lambda: estate_user_lang(estate, "duty") == "zh", message="the language stored for the user"
    )
    await page.get_by_test_id("lang-switch").click()
    await expect(page.get_by_test_id("nav-duty")).to_contain_text("Duty")
    await wait_until(lambda: estate_user_lang(estate, "duty") == "en", message="English stored")
    # Leave the duty user in Chinese for the other tests.
    await page.get_by_test_id("lang-switch").click()
    await wait_until(lambda: estate_user_lang(estate, "duty") == "zh", message="Chinese stored again")
    await context.close()


def estate_user_lang(estate: Estate, username: str) -> str | None:
    dashboard = estate.gateway.dashboard
    assert dashboard is not None and dashboard.ctx is not None
    for user in dashboard.ctx.accounts.users():
        if user.username == username:
            return str(user.lang)
    return None


def rule_state(estate: Estate, rule: str) -> str:
    return str({r["id"]: r for r in estate.gateway.alarms.linkage_rules()}[rule]["state"])


async def test_linkage_waits_for_the_operator_and_is_confirmed(estate: Estate) -> None:
    context = await estate.context()
    page = await context.new_page()
    await login(page, "duty", USERS["duty"][1])
    panel = page.get_by_test_id("linkage-panel")
    rule = panel.locator('[data-rule="fire-t1"]')
    await expect(rule).to_contain_text("人工确认")
    # Two detectors in tower 1's zone: the rule's trigger; in confirm mode it waits for us.
    await estate.inject("fire-panel", "fire", zone=1, detectors=2)
    confirm = rule.get_by_test_id("linkage-confirm")
    await expect(confirm).to_be_visible(timeout=DEADLINE_MS)
    await expect(rule).to_contain_text("等待确认")
    assert rule_state(estate, "fire-t1") == "awaiting_confirm"
    await screenshot(page, "17-linkage-confirm")
    await confirm.click()
    await expect(page.get_by_test_id("confirm-dialog")).to_contain_text("1号楼火灾联动")
    await page.get_by_test_id("dialog-ok").click()
    await wait_until(lambda: rule_state(estate, "fire-t1") != "awaiting_confirm", message="the rule started")
    await expect(confirm).to_have_count(0, timeout=DEADLINE_MS)
    # The steps it wrote show up in the linkage log, pushed by SSE.
    await expect(panel.locator(".lk-log li").first).to_be_visible(timeout=DEADLINE_MS)
    # Quiet again: acknowledge the fire (it stays latched on the panel).
    key = f"{estate.site_id}/fire-panel/zone1_fire/fire"
    await page.locator(f'[data-key="{key}"]').get_by_test_id("alarm-ack").click()
    await expect(page.locator(f'[data-key="{key}"]')).to_have_attribute(
        "data-state", "acknowledged", timeout=DEADLINE_MS
    )
    await context.close()
    await estate.clear("fire-panel")
