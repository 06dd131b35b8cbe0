"""Central's console in real headless Chromium, fed by a real estate.

One fleet for the whole package: Mosquitto (tests/broker.py) and the real central service
(``CentralService`` with MQTT ingest, HTTPS API and the console) in the test's event loop;
estate A is the demo estate — real simulators, the real gateway with its rules engine, and an
``uplink:`` to the broker; estate B is one more enrolled gateway whose signed batches the
fixture posts over HTTPS. Accounts are made through the console's API once; each test opens
its own browser context (fresh cookies).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from cloud_sync.central.app import CentralService
from cloud_sync.central.config import CentralConfig
from cloud_sync.central.console import mount_console
from cloud_sync.central.console.context import SETUP_CODE_FILE, ConsoleContext
from cloud_sync.certs import CENTRAL_USER
from cloud_sync.envelope import make_sealer
from cloud_sync.keys import key_id, load_private_key
from cloud_sync.ports import Lane, TelemetryRow
from cloud_sync.webauth.setup_code import read_setup_code
from edge.app import Gateway
from edge.config.loader import load_site
from simulators.runner import SimulationRunner
from simulators.site_plan import read_site_plan
from tests.broker import start_broker
from tests.browser.conftest import CHROMIUM_ARGS, DEMO, stop_run
from tests.integration.central.conftest import TOKEN, central_config, make_gateway
from tests.integration.central.conftest import Gateway as SimGateway
from tests.integration.sync.helpers import CENTRAL_PUB_NAME, signing_key
from tests.support import free_port, wait_until

XHR = {"X-Requested-With": "gatehouse"}
GW_A = "gw-sunshine-1"  # the demo estate's gateway id
GW_B = "gw-b"
ESTATE_A, ESTATE_B = "estate-a", "estate-b"
ADMIN = ("root", "Root-pass-2026")
OPERATOR_A = ("op-a", "Opera-pass-2026")  # limited to estate A
VICTIM = ("victim", "Victim-pass-2026")  # for the lockout test


@dataclass
class Fleet:
    url: str  # https://127.0.0.1:PORT
    service: CentralService
    gateway: Gateway
    sim: SimulationRunner
    sim_api: httpx.AsyncClient  # the simulators' control API
    api: httpx.AsyncClient  # central's API with the test token
    site_id: str
    browser: Browser
    page_errors: list[str] = field(default_factory=list)

    async def context(self, *, locale: str = "zh-CN") -> BrowserContext:
        context = await self.browser.new_context(
            base_url=self.url,
            locale=locale,
            viewport={"width": 1440, "height": 900},
            ignore_https_errors=True,  # central's self-signed test certificate
        )
        context.on("page", lambda page: page.on("pageerror", lambda exc: self.page_errors.append(str(exc))))
        return context


def ensure_console(service: CentralService, data_dir: Path) -> ConsoleContext:
    """The console central mounted (cloud_sync.central.app), or mount it here if this central
    does not do so itself."""
    ctx: ConsoleContext | None = getattr(service.app.state, "console", None)
    if ctx is None:
        ctx = mount_console(service.app, data_dir=data_dir, secure_cookies=service.config.api.tls is not None)
    return ctx


def estate_a_site(
    folder: Path, broker_host: str, broker_port: int, ca: Path, login: str, password_file: Path
) -> Path:
    """The demo estate on free ports, data in ``folder``, with an ``uplink:`` to the broker."""
    folder.mkdir(parents=True, exist_ok=True)
    signing_key(folder)  # signing.key and central's pinned public key beside it
    text = DEMO.read_text(encoding="utf-8")
    text = re.sub(r"port: 150\d\d", lambda _m: f"port: {free_port()}", text)
    text = re.sub(r"data_dir: \S+", f"data_dir: {folder / 'data'}", text, count=1)
    text = text.replace("  - id: fire-panel\n", "  - id: fire-panel\n    poll_interval_s: 1\n")
    text += (
        "\nuplink:\n"
        f"  broker_host: {broker_host}\n"
        f"  broker_port: {broker_port}\n"
        f"  ca_file: {ca}\n"
        f"  username: {login}\n"
        f"  password_file: {password_file}\n"
        "  signing_key: signing.key\n"
        f"  central_key: {CENTRAL_PUB_NAME}\n"
        "  idle_poll_s: 0.05\n"
        "  state_interval_s: 2.0\n"
        "  backoff_initial_s: 0.2\n"
        "  backoff_max_s: 1.5\n"
    )
    path = folder / "estate.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def with_estates(config: CentralConfig) -> CentralConfig:
    estates = {GW_A: (ESTATE_A, "阳光花园 1 号网关"), GW_B: (ESTATE_B, "翠湖园网关")}
    gateways = [
        g.model_copy(update={"estate": estates[g.id][0], "name": estates[g.id][1]}) for g in config.gateways
    ]
    return config.model_copy(update={"gateways": gateways})


async def post_estate_b(api: httpx.AsyncClient, gw: SimGateway) -> None:
    """Estate B's gateway sends one telemetry batch over HTTPS (signed like any gateway's)."""
    now = time.time()
    rows = [
        TelemetryRow(point_id=f"cuihu/meter-{i}/power_w", value=100.0 + i, quality=0, reason="",
                     receipt_ts=now - 60 + i, source_ts=None)
        for i in range(5)
    ]  # fmt: skip
    batch = gw.seal(lane=Lane.TELEMETRY, seq=1, rows=rows, historical=False, sealed_at=now)
    response = await api.post(
        f"/api/v1/ingest/{GW_B}/telemetry",
        content=batch,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text


async def create_accounts(client: httpx.AsyncClient, data_dir: Path) -> None:
    code = read_setup_code(data_dir, file_name=SETUP_CODE_FILE)
    assert code is not None, f"no console setup code in {data_dir}"
    response = await client.post(
        "/console/api/setup", json={"username": ADMIN[0], "password": ADMIN[1], "code": code}, headers=XHR
    )
    assert response.status_code == 201, response.text
    headers = {"X-CSRF-Token": client.cookies["ghc_csrf"], **XHR}
    for (username, password), role, estates in (
        (OPERATOR_A, "operator", [ESTATE_A]),
        (VICTIM, "viewer", None),
    ):
        body = {"username": username, "password": password, "role": role, "estates": estates}
        response = await client.post("/console/api/users", json=body, headers=headers)
        assert response.status_code == 201, response.text


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def console_browser(chromium: str) -> AsyncIterator[Browser]:
    # A browser of this package's own: its event loop is this package's (tests/browser's is another).
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def fleet(console_browser: Browser) -> AsyncIterator[Fleet]:
    tmp = Path(tempfile.mkdtemp(prefix="gh-central-browser-"))
    try:
        with start_broker(tmp / "mq", gateways=(GW_A,)) as broker:
            login, _ = broker.credentials(GW_A)
            site_path = estate_a_site(
                tmp / "a", broker.host, broker.port, broker.ca_path, login, broker.clients[GW_A].password_path
            )
            key = load_private_key(tmp / "a" / "signing.key")
            gw_a = SimGateway(GW_A, key, make_sealer(GW_A, key_id(key.public_key()), key))
            gw_b = make_gateway(GW_B, 2)
            user, password = broker.credentials(CENTRAL_USER)
            (tmp / "central").mkdir()
            config = with_estates(
                central_config(
                    tmp / "central",
                    [gw_a, gw_b],
                    broker={"host": broker.host, "port": broker.port, "ca_file": str(broker.ca_path),
                            "username": user, "password": password, "client_id": "central-browser",
                            "keepalive_s": 5, "reconnect_max_s": 2},
                )
            )  # fmt: skip
            assert config.api.tls is not None
            service = CentralService(config)
            console = ensure_console(service, tmp / "central")
            site = load_site(site_path)
            plan = read_site_plan(site_path)
            verify = ssl.create_default_context(cafile=str(config.api.tls.cert_file))
            async with (
                service,
                SimulationRunner(plan.devices, tick_s=0.5, control_port=free_port()) as sim,
                Gateway(site) as gateway,
                httpx.AsyncClient(base_url=sim.control_url, timeout=30.0) as sim_api,
            ):
                url = f"https://127.0.0.1:{service.api_port}"
                run = asyncio.create_task(gateway.run(), name="gateway")
                try:
                    async with (
                        httpx.AsyncClient(base_url=url, verify=verify, timeout=30.0,
                                          headers={"Authorization": f"Bearer {TOKEN}"}) as api,
                        httpx.AsyncClient(base_url=url, verify=verify, timeout=30.0) as console_client,
                    ):  # fmt: skip
                        await post_estate_b(api, gw_b)
                        await create_accounts(console_client, console.data_dir)

                        async def estate_a_reported() -> bool:
                            points = (await api.get("/api/v1/points", params={"gateway": GW_A})).json()
                            return any(p["point_id"].startswith(f"{site.id}/fire-panel/") for p in points)

                        reported: Callable[[], bool | Awaitable[bool]] = estate_a_reported
                        await wait_until(reported, timeout_s=120, interval_s=0.5, message="estate A")
                        yield Fleet(url, service, gateway, sim, sim_api, api, site.id, console_browser)
                finally:
                    gateway.stop()
                    await stop_run(run)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def login(page: Page, username: str, password: str) -> None:
    await page.goto("/console/#/login")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()
    await page.get_by_test_id("fleet-table").wait_for(timeout=30_000)


async def api_status(page: Page, path: str) -> tuple[int, Any]:
    """What the browser's own session gets from central's API (its cookie, same origin)."""
    result: list[Any] = await page.evaluate(
        """async (path) => {
            const r = await fetch(path, { credentials: "same-origin" });
            let body = null;
            try { body = await r.json(); } catch (e) {}
            return [r.status, body];
        }""",
        path,
    )
    return int(result[0]), result[1]
