"""Central's console in headless Chromium (issue 14, item 5): first run with the setup code,
sign-in and lockout with the administrator's unlock, a fire alarm raised on the simulated
estate appearing in the alarm console without a reload, the history charts, and an operator
limited to estate A who sees nothing of estate B in the pages or through the API."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from cloud_sync.central.app import CentralService
from cloud_sync.central.console.context import SETUP_CODE_FILE
from cloud_sync.webauth.setup_code import read_setup_code
from tests.browser.central.conftest import (
    ADMIN,
    ESTATE_A,
    GW_A,
    GW_B,
    OPERATOR_A,
    VICTIM,
    Fleet,
    api_status,
    ensure_console,
    login,
)
from tests.browser.conftest import screenshot
from tests.integration.central.conftest import central_config

pytestmark = pytest.mark.asyncio(loop_scope="package")


@pytest.fixture(autouse=True)
def no_script_errors(fleet: Fleet) -> object:
    fleet.page_errors.clear()
    yield
    assert not fleet.page_errors, fleet.page_errors


async def test_first_run_creates_the_administrator_with_the_setup_code(fleet: Fleet) -> None:
    # A central of its own: the package's central has its administrator already.
    with tempfile.TemporaryDirectory(prefix="gh-console-first-") as tmp:
        config = central_config(Path(tmp), [])
        service = CentralService(config)
        console = ensure_console(service, Path(tmp))
        code = read_setup_code(console.data_dir, file_name=SETUP_CODE_FILE)
        assert code is not None
        async with service:
            context = await fleet.browser.new_context(
                base_url=f"https://127.0.0.1:{service.api_port}", locale="en-US", ignore_https_errors=True
            )
            page = await context.new_page()
            await page.goto("/console/")
            await page.get_by_test_id("setup-form").wait_for()
            await page.get_by_test_id("setup-code").fill("WRNG-CODE-XXXX")
            await page.get_by_test_id("setup-username").fill("first")
            await page.get_by_test_id("setup-password").fill("First-pass-2026")
            await page.get_by_test_id("setup-password2").fill("First-pass-2026")
            await page.get_by_test_id("setup-submit").click()
            await page.get_by_test_id("setup-error").filter(has_text="Wrong setup code").wait_for()
            await page.get_by_test_id("setup-code").fill(code.lower())
            await page.get_by_test_id("setup-submit").click()
            await page.get_by_test_id("fleet-table").wait_for(timeout=30_000)
            assert "first" in await page.get_by_test_id("who").inner_text()
            assert await page.get_by_test_id("nav-users").is_visible()
            assert not (console.data_dir / SETUP_CODE_FILE).exists()
            await context.close()


async def test_three_failures_lock_and_the_administrator_unlocks(fleet: Fleet) -> None:
    victim = await fleet.context(locale="en-US")
    page = await victim.new_page()
    await page.goto("/console/#/login")
    errors: list[str] = []
    for _ in range(3):
        await page.get_by_test_id("login-username").fill(VICTIM[0])
        await page.get_by_test_id("login-password").fill("not-the-password")
        await page.get_by_test_id("login-submit").click()
        await page.wait_for_function(
            "n => document.querySelector('[data-testid=login-error]').textContent !== '' && "
            "document.querySelector('[data-testid=login-submit]').disabled === false",
            arg=len(errors),
        )
        errors.append(await page.get_by_test_id("login-error").inner_text())
        await page.evaluate("document.querySelector('[data-testid=login-error]').textContent = ''")
    assert errors[0] == "Wrong username or password, 2 attempts left"
    assert "locked" in errors[2]
    # the right password does not open the lock
    await page.get_by_test_id("login-password").fill(VICTIM[1])
    await page.get_by_test_id("login-submit").click()
    await page.get_by_test_id("login-error").filter(has_text="locked").wait_for()

    admin = await fleet.context(locale="en-US")
    admin_page = await admin.new_page()
    await login(admin_page, *ADMIN)
    await admin_page.get_by_test_id("nav-users").click()
    row = admin_page.locator(f'[data-testid="user-row"][data-user="{VICTIM[0]}"]')
    await row.wait_for()
    await admin_page.get_by_test_id(f"unlock-{VICTIM[0]}").click()
    await admin_page.get_by_test_id(f"unlock-{VICTIM[0]}").wait_for(state="detached")
    audit = admin_page.get_by_test_id("console-audit")
    assert "lockout" in await audit.inner_text()

    await login(page, *VICTIM)
    assert VICTIM[0] in await page.get_by_test_id("who").inner_text()
    await victim.close()
    await admin.close()


async def test_a_fire_alarm_on_the_estate_appears_in_the_console_without_reload(fleet: Fleet) -> None:
    context = await fleet.context()
    page = await context.new_page()
    await login(page, *ADMIN)
    await page.get_by_test_id("nav-alarms").click()
    await page.locator('[data-testid="stream-state"].on').wait_for(timeout=30_000)
    await page.evaluate("window.__sameDocument = true")
    zone_point = f"{fleet.site_id}/fire-panel/zone3_fire"
    fire_rows = page.locator(f'[data-testid="alarm-row"][data-alarm-class="fire"]:has-text("{zone_point}")')
    assert await fire_rows.count() == 0
    response = await fleet.sim_api.post("/devices/fire-panel/scenarios/fire", json={"zone": 3})
    assert response.status_code == 200, response.text
    try:
        await fire_rows.first.wait_for(timeout=120_000)
        assert await page.evaluate("window.__sameDocument === true"), "the page was reloaded"
        row = fire_rows.first
        assert ESTATE_A in await row.inner_text()
        assert GW_A in await row.inner_text()
        # the totals by class follow the stream too
        await page.get_by_test_id("alarm-summary").filter(has_text="火警").wait_for(timeout=30_000)
        await screenshot(page, "central-alarms")
    finally:
        await fleet.sim_api.delete("/devices/fire-panel/scenarios")
    await context.close()


async def test_history_charts_render(fleet: Fleet) -> None:
    points = (await fleet.api.get("/api/v1/points", params={"gateway": GW_A})).json()
    numeric = next(p for p in points if isinstance(p["value"], float) and p["quality"] == 0)
    context = await fleet.context(locale="en-US")
    page = await context.new_page()
    await login(page, *ADMIN)
    await page.goto(f"/console/#/points/{numeric['point_id']}")
    chart = page.get_by_test_id("point-chart")
    await chart.wait_for(timeout=30_000)
    assert int(await chart.get_attribute("data-points") or 0) >= 1
    assert await chart.locator("polyline").count() == 1
    await screenshot(page, "central-points")
    csv = await page.get_by_test_id("point-csv").get_attribute("href")
    assert csv is not None and "format=csv" in csv
    await page.get_by_test_id("nav-history").click()
    await page.get_by_test_id("chart-class").wait_for(timeout=30_000)
    await page.get_by_test_id("chart-estate").wait_for()
    await page.get_by_test_id("chart-time").wait_for()
    await screenshot(page, "central-history")
    await context.close()


async def test_an_operator_of_estate_a_sees_nothing_of_estate_b(fleet: Fleet) -> None:
    context = await fleet.context()
    page = await context.new_page()
    await login(page, *OPERATOR_A)
    rows = page.get_by_test_id("fleet-row")
    await rows.first.wait_for()
    estates = {await r.get_attribute("data-estate") for r in await rows.all()}
    gateways = {await r.get_attribute("data-gateway") for r in await rows.all()}
    assert estates == {ESTATE_A} and gateways == {GW_A}
    assert not await page.get_by_test_id("nav-users").is_visible()
    assert not await page.get_by_test_id("nav-audit").is_visible()
    # the API answers the operator's session as it answers the page
    status, _ = await api_status(page, f"/api/v1/gateways/{GW_B}")
    assert status == 404
    status, body = await api_status(page, "/api/v1/fleet")
    assert status == 200 and {g["estate"] for g in body} == {ESTATE_A}
    status, body = await api_status(page, f"/api/v1/points?gateway={GW_B}")
    assert status == 404 or (status, body) == (200, [])
    status, body = await api_status(page, "/api/v1/points?q=cuihu")
    assert status == 200 and body == []
    status, _ = await api_status(page, "/console/api/users")
    assert status == 403
    # the administrator, with every estate, sees both
    admin = await fleet.context()
    admin_page = await admin.new_page()
    await login(admin_page, *ADMIN)
    await admin_page.get_by_test_id("fleet-row").first.wait_for()
    await screenshot(admin_page, "central-fleet")
    status, body = await api_status(admin_page, "/api/v1/fleet")
    assert {g["estate"] for g in body} == {ESTATE_A, "estate-b"}
    status, body = await api_status(admin_page, "/api/v1/points?q=cuihu")
    assert len(body) == 5
    await context.close()
    await admin.close()


async def test_the_batch_audit_lists_a_rejected_batch(fleet: Fleet) -> None:
    forged = await fleet.api.post(
        f"/api/v1/ingest/{GW_B}/telemetry",
        content=b"not a signed batch",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert forged.status_code >= 400
    context = await fleet.context(locale="en-US")
    page = await context.new_page()
    await login(page, *ADMIN)
    await page.get_by_test_id("nav-audit").click()
    row = page.locator(f'[data-testid="rejected-row"]:has-text("{GW_B}")')
    await row.first.wait_for(timeout=30_000)
    await page.get_by_test_id("gap-list").wait_for()
    assert await page.get_by_test_id("rejected-error").inner_text() == ""
    assert await page.get_by_test_id("gaps-error").inner_text() == ""
    await context.close()
