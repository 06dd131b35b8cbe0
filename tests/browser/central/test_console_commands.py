"""Commands from central's console in headless Chromium (issue 15 item 4): an operator of estate
A sends a command to the demo estate's real gateway from the Commands view and sees it done;
from the alarm console it acknowledges a fire alarm at the gateway, and the alarm's state,
streamed back from the gateway, turns acknowledged without a reload."""

from __future__ import annotations

import pytest

from tests.browser.central.conftest import GW_A, GW_B, OPERATOR_A, Fleet, api_status, login
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.asyncio(loop_scope="package")


@pytest.fixture(autouse=True)
def no_script_errors(fleet: Fleet) -> object:
    fleet.page_errors.clear()
    yield
    assert not fleet.page_errors, fleet.page_errors


async def test_an_operator_sends_a_command_from_the_commands_view_and_sees_it_done(fleet: Fleet) -> None:
    context = await fleet.context(locale="en-US")
    page = await context.new_page()
    await login(page, *OPERATOR_A)
    await page.get_by_test_id("nav-commands").click()
    await page.get_by_test_id("cmd-gateway").fill(GW_A)
    await page.get_by_test_id("cmd-action").select_option("log.level")
    await page.get_by_test_id("cmd-arg-level").select_option("info")
    await page.get_by_test_id("cmd-arg-minutes").fill("5")
    await page.get_by_test_id("cmd-send").click()
    await page.get_by_test_id("cmd-sent").filter(has_text="no.").wait_for(timeout=30_000)
    done = page.locator('[data-testid="command-row"][data-state="done"]:has-text("log.level")')
    await done.first.wait_for(timeout=60_000)
    assert "op-a" in await done.first.inner_text()
    await screenshot(page, "central-commands")
    # estate B's gateway is not the operator's to command: 404, as if it did not exist
    await page.get_by_test_id("cmd-gateway").fill(GW_B)
    await page.get_by_test_id("cmd-send").click()
    await page.get_by_test_id("cmd-error").filter(has_text="Central does not offer").wait_for(timeout=30_000)
    status, body = await api_status(page, f"/api/v1/commands?gateway={GW_B}")
    assert (status, body) == (200, [])
    await context.close()


async def test_an_operator_acknowledges_a_fire_alarm_from_the_alarm_console(fleet: Fleet) -> None:
    context = await fleet.context()
    page = await context.new_page()
    await login(page, *OPERATOR_A)
    await page.get_by_test_id("nav-alarms").click()
    await page.locator('[data-testid="stream-state"].on').wait_for(timeout=30_000)
    zone_point = f"{fleet.site_id}/fire-panel/zone2_fire"
    row = page.locator(f'[data-testid="alarm-row"][data-alarm-class="fire"]:has-text("{zone_point}")')
    response = await fleet.sim_api.post("/devices/fire-panel/scenarios/fire", json={"zone": 2})
    assert response.status_code == 200, response.text
    try:
        await row.get_by_test_id("alarm-ack").wait_for(timeout=120_000)
        await row.get_by_test_id("alarm-ack").click()
        await page.get_by_test_id("alarm-command-sent").filter(has_text=GW_A).wait_for(timeout=30_000)
        # acknowledged at the gateway; the change comes back on its event lane and the stream
        await row.locator(".state-active_acked").wait_for(timeout=60_000)
        assert await row.get_by_test_id("alarm-ack").count() == 0
    finally:
        await fleet.sim_api.delete("/devices/fire-panel/scenarios")
    await context.close()
