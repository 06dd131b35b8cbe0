"""The dashboard in real headless Chromium (Debian's /usr/bin/chromium through Playwright).

One estate for the whole package: the demo estate's simulators, the real gateway
(``edge.app.Gateway``) with the real rules engine, and the LAN dashboard it serves over HTTPS with
a certificate from a test site CA, as an installed gateway does. Users of every role are created
through the API once; each test opens its own browser context (fresh cookies).

Trust: the test's API clients verify the dashboard against the site CA (chain and host name).
Chromium has no option to add a CA short of an NSS database (``certutil``, not installed here),
so it is started with ``--ignore-certificate-errors-spki-list`` naming the public key of exactly
that dashboard certificate: any other certificate is still refused.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import re
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from cloud_sync.certs import PkiLayout, create_ca, issue_dashboard
from edge.app import Gateway
from edge.config.loader import load_site
from edge.dashboard.setup_code import read_setup_code
from simulators.runner import SimulationRunner
from simulators.site_plan import read_site_plan
from tests.browser.daemon import DutySite, duty_site
from tests.support import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "examples" / "demo-estate.yaml"
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The fire sounder must be able to start without a click in the test (a person logs in first).
    "--autoplay-policy=no-user-gesture-required",
]
XHR = {"X-Requested-With": "gatehouse"}

ADMIN = ("admin", "Admin-pass-2026")
USERS = {
    "duty": ("operator", "Duty-pass-2026", "值班员张伟"),
    "viewer": ("viewer", "Viewer-pass-2026", "访客李娜"),
    "tech": ("technician", "Tech-pass-2026", "技术员王强"),
    "victim": ("operator", "Victim-pass-2026", "锁定测试"),
}


@dataclass(frozen=True)
class SitePki:
    """A test site CA and the estate dashboard's certificate issued from it."""

    ca_cert: Path
    cert: Path
    key: Path

    def trust(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_cert))

    def chromium_pin(self) -> str:
        """The flag that makes Chromium accept this one certificate (see the module docstring)."""
        leaf = x509.load_pem_x509_certificate(self.cert.read_bytes())
        spki = leaf.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return (
            "--ignore-certificate-errors-spki-list="
            + base64.b64encode(hashlib.sha256(spki).digest()).decode()
        )


def make_site_pki(folder: Path) -> SitePki:
    layout = PkiLayout(folder)
    now = dt.datetime.now(dt.UTC)
    ca = create_ca(layout, now=now, common_name="Browser test site CA")
    cert, key = issue_dashboard(ca, layout, "browser-gw", now=now)
    return SitePki(layout.ca_cert, cert, key)


@dataclass
class Estate:
    gateway: Gateway
    sim: SimulationRunner
    url: str
    site_id: str
    browser: Browser
    api: httpx.AsyncClient  # the simulators' control API
    pki: SitePki

    page_errors: list[str] = field(default_factory=list)

    def client(self) -> httpx.AsyncClient:
        """An API client of the dashboard that trusts the site CA (and nothing else)."""
        return httpx.AsyncClient(base_url=self.url, verify=self.pki.trust(), timeout=30.0)

    async def context(self, *, locale: str = "zh-CN", width: int = 1366, height: int = 768) -> BrowserContext:
        context = await self.browser.new_context(
            base_url=self.url,
            locale=locale,
            viewport={"width": width, "height": height},
            extra_http_headers={"Accept-Language": locale},
        )
        # Any uncaught script error in the dashboard fails the test (see no_script_errors).
        context.on("page", lambda page: page.on("pageerror", lambda exc: self.page_errors.append(str(exc))))
        return context

    async def inject(self, device: str, scenario: str, **params: Any) -> None:
        response = await self.api.post(f"/devices/{device}/scenarios/{scenario}", json=params)
        assert response.status_code == 200, response.text

    async def clear(self, device: str) -> None:
        response = await self.api.delete(f"/devices/{device}/scenarios")
        assert response.status_code == 200, response.text


def demo_site(tmp: Path, dashboard_port: int, control_port: int, pki: SitePki) -> Path:
    """The demo estate on free ports, its data in ``tmp``, with the dashboard switched on (HTTPS)."""
    text = DEMO.read_text(encoding="utf-8")
    text = re.sub(r"port: 150\d\d", lambda _m: f"port: {free_port()}", text)
    text = re.sub(r"data_dir: \S+", f"data_dir: {tmp / 'data'}", text, count=1)
    text = text.replace("  - id: fire-panel\n", "  - id: fire-panel\n    poll_interval_s: 1\n")
    # Tower 1's linkage waits for the operator (the other towers stay automatic).
    text = text.replace("mode: automatic", "mode: confirm", 1)
    text += (
        "\ndashboard:\n"
        f"  listen: 127.0.0.1:{dashboard_port}\n"
        "  db: dashboard.db\n"
        "  history_interval_s: 2\n"
        f"  simulator_api: http://127.0.0.1:{control_port}\n"
        f"  tls_cert: {pki.cert}\n"
        f"  tls_key: {pki.key}\n"
    )
    path = tmp / "estate.yaml"
    path.write_text(text, encoding="utf-8")
    return path


async def create_users(url: str, data_dir: Path, *, verify: ssl.SSLContext | bool = True) -> None:
    """The administrator (with the setup code the gateway wrote to ``data_dir``) and USERS."""
    code = read_setup_code(data_dir)
    assert code is not None, f"no dashboard setup code in {data_dir}"
    async with httpx.AsyncClient(base_url=url, verify=verify, timeout=30.0) as client:
        response = await client.post(
            "/api/setup",
            json={"username": ADMIN[0], "password": ADMIN[1], "name": "系统管理员", "phone": "13800000000",
                  "code": code},
            headers=XHR,
        )  # fmt: skip
        assert response.status_code == 201, response.text
        csrf = response.json()["csrf"]
        for username, (role, password, name) in USERS.items():
            body = {"username": username, "password": password, "role": role, "name": name}
            response = await client.post("/api/admin/users", json=body, headers={"X-CSRF-Token": csrf})
            assert response.status_code == 201, response.text


@pytest.fixture(scope="package")
def chromium() -> str:
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: make setup (as root) installs it"
    return CHROMIUM


@pytest.fixture(scope="package")
def site_pki() -> Iterator[SitePki]:
    folder = Path(tempfile.mkdtemp(prefix="gh-browser-pki-"))
    try:
        yield make_site_pki(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def browser(chromium: str, site_pki: SitePki) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=chromium, args=[*CHROMIUM_ARGS, site_pki.chromium_pin()], headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def estate(browser: Browser, site_pki: SitePki) -> AsyncIterator[Estate]:
    tmp = Path(tempfile.mkdtemp(prefix="gh-browser-"))
    control_port = free_port()
    site_path = demo_site(tmp, free_port(), control_port, site_pki)
    site = load_site(site_path)
    plan = read_site_plan(site_path)
    try:
        async with (
            SimulationRunner(plan.devices, tick_s=0.5, control_port=control_port) as sim,
            Gateway(site) as gateway,
            httpx.AsyncClient(base_url=sim.control_url, timeout=30.0) as api,
        ):
            run = asyncio.create_task(gateway.run(), name="gateway")
            try:
                assert gateway.dashboard is not None and gateway.alarms is not None
                url = gateway.dashboard.url
                assert url.startswith("https://"), url
                fire_panel = f"{site.id}/fire-panel/zone1_fire"
                await wait_until(
                    lambda: fire_panel in gateway.live.latest, timeout_s=60, message="the fire panel polled"
                )
                await create_users(url, site.data_dir, verify=site_pki.trust())
                yield Estate(gateway, sim, url, site.id, browser, api, site_pki)
            finally:
                gateway.stop()
                await stop_run(run)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def stop_run(run: asyncio.Task[None]) -> None:
    """Wait for ``Gateway.run()`` to end after ``stop()``; a gateway that does not stop fails.

    (It once did, after linkage writes: pymodbus's wait_for swallowed the cancel on Python
    3.11 — see drivers.base.raise_if_cancelling.)
    """
    async with asyncio.timeout(60):
        await run


async def login(page: Page, username: str, password: str) -> None:
    await page.goto("/")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()
    await page.get_by_test_id("alarm-list").wait_for(timeout=30_000)


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


@pytest.fixture(autouse=True)
def no_script_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test whose pages threw an uncaught script error."""
    if "estate" not in request.fixturenames:
        yield
        return
    estate: Estate = request.getfixturevalue("estate")
    estate.page_errors.clear()
    yield
    assert not estate.page_errors, estate.page_errors


@pytest_asyncio.fixture(scope="module", loop_scope="package")
async def duty(browser: Browser) -> AsyncIterator[DutySite]:
    """The duty-zones site under a real ``gatehouse run`` child process (tests/browser/daemon.py)."""
    with tempfile.TemporaryDirectory(prefix="gh-duty-") as tmp:
        async with duty_site(Path(tmp)) as site:
            await create_users(site.daemon.url, site.daemon.data_dir())
            yield site
