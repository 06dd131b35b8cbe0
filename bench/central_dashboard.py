"""Central console page loads in Chromium: the fleet overview with 1,000 gateways and the alarm
console with 10,000 active alarms, each from a fresh page load to the console's own
performance mark (``ghc:fleet-rendered`` / ``ghc:alarms-rendered``, set once the list is in the
DOM).

The real central service (``CentralService``: its store, HTTP API and console) holds 1,000
enrolled gateways in 50 estates; each gateway's signed batches go through central's real ingest
(signature check, exactly-once store, alarm lifecycle): one telemetry batch of 5 points and one
event batch raising 10 alarms, so 10,000 alarms are active. Debian's /usr/bin/chromium,
headless, signed in as an administrator with every estate. The alarm console loads the newest
1,000 active alarms (and the totals by class of all of them) and follows the live stream; the
fleet overview loads every gateway and shows 100 per page.

Target (issue 14): <= 1 s each. ``--postgres`` runs the same against a private PostgreSQL
(tests/pg.py: initdb + pg_ctl in a temporary folder on a free port).

Run: ``python -m bench.central_dashboard [--runs N] [--postgres]``; saves
``bench/results/central_dashboard[_postgres].json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import BrowserContext, async_playwright

from cloud_sync.central.app import CentralService
from cloud_sync.central.config import CentralConfig
from cloud_sync.central.console import mount_console
from cloud_sync.central.console.context import SETUP_CODE_FILE, ConsoleContext
from cloud_sync.envelope import make_sealer
from cloud_sync.keys import generate_private_key, key_id, public_key_pem, save_private_key
from cloud_sync.ports import EventRow, Lane, TelemetryRow
from cloud_sync.webauth.setup_code import read_setup_code

RESULTS = Path(__file__).resolve().parent / "results"
GATEWAYS = 1_000
ESTATES = 50
ALARMS_PER_GATEWAY = 10
TARGET_MS = 1_000.0
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
]
ADMIN = {"username": "bench", "password": "bench-password-1"}
XHR = {"X-Requested-With": "gatehouse"}
CLASSES = [("fire", "critical"), ("supervisory", "high"), ("fault", "medium"), ("fault", "medium"),
           ("security", "high"), ("other", "low")]  # fmt: skip


def gateway_ids() -> list[str]:
    return [f"gw-{i:04d}" for i in range(GATEWAYS)]


def make_config(tmp: Path, database: str, pems: dict[str, str]) -> CentralConfig:
    signing = generate_private_key()
    save_private_key(signing, tmp / "central.key")
    return CentralConfig.model_validate(
        {
            "database": database,
            "signing_key": str(tmp / "central.key"),
            "api": {"host": "127.0.0.1", "port": 0, "tokens": [{"name": "bench", "token": "bench-token"}]},
            "gateways": [
                {"id": gw, "keys": [{"pem": pem}], "estate": f"estate-{i % ESTATES:02d}", "name": f"网关 {i}"}
                for i, (gw, pem) in enumerate(pems.items())
            ],
        }
    )


def batches(now: float) -> tuple[dict[str, str], list[tuple[bytes, str, str]]]:
    """Enrolment PEMs and the signed batches of every gateway: telemetry and raised alarms."""
    pems: dict[str, str] = {}
    items: list[tuple[bytes, str, str]] = []
    for g, gw in enumerate(gateway_ids()):
        key = generate_private_key()
        pems[gw] = public_key_pem(key.public_key())
        seal = make_sealer(gw, key_id(key.public_key()), key)
        site = f"site-{g:04d}"
        telemetry = [
            TelemetryRow(point_id=f"{site}/meter-{p}/power_w", value=100.0 + p, quality=0, reason="",
                         receipt_ts=now - 30 + p, source_ts=None)
            for p in range(5)
        ]  # fmt: skip
        events = []
        for a in range(ALARMS_PER_GATEWAY):
            klass, priority = CLASSES[(g + a) % len(CLASSES)]
            point = f"{site}/zone-{a}/alarm"
            events.append(
                EventRow(
                    kind="alarm.raised",
                    source=f"{point}/{klass}",
                    ts=now - 3600 + g + a,
                    data={"to": "unacknowledged", "transition": "raised", "point": point, "class": klass,
                          "priority": priority, "message": f"{site} zone {a}"},
                )
            )  # fmt: skip
        items.append(
            (
                seal(lane=Lane.TELEMETRY, seq=1, rows=telemetry, historical=False, sealed_at=now),
                gw,
                "telemetry",
            )
        )
        items.append(
            (seal(lane=Lane.EVENT, seq=1, rows=events, historical=False, sealed_at=now), gw, "event")
        )
    return pems, items


@contextlib.contextmanager
def database(tmp: Path, postgres: bool) -> Iterator[str]:
    if not postgres:
        yield str(tmp / "central.db")
        return
    from tests.pg import start_postgres

    with start_postgres() as pg:
        yield pg.create_database()


def ensure_console(service: CentralService, data_dir: Path) -> ConsoleContext:
    ctx: ConsoleContext | None = getattr(service.app.state, "console", None)
    return ctx if ctx is not None else mount_console(service.app, data_dir=data_dir)


async def page_load(context: BrowserContext, route: str, mark: str) -> float:
    page = await context.new_page()
    try:
        await page.goto(f"/console/#/{route}")
        rendered = "(m) => performance.getEntriesByName(m).length > 0"
        await page.wait_for_function(rendered, arg=mark, timeout=60_000)
        ms: float = await page.evaluate("(m) => performance.getEntriesByName(m)[0].startTime", mark)
        return ms
    finally:
        await page.close()


async def measure(url: str, cookies: list[dict[str, str]], runs: int) -> tuple[list[float], list[float]]:
    """``runs`` fresh loads of each page in one signed-in browser context (after one warm-up)."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = await browser.new_context(
                base_url=url, locale="zh-CN", viewport={"width": 1440, "height": 900}
            )
            await context.add_cookies(cookies)  # type: ignore[arg-type]
            pages = (("fleet", "ghc:fleet-rendered"), ("alarms", "ghc:alarms-rendered"))
            for route, mark in pages:
                await page_load(context, route, mark)
            fleet = [await page_load(context, *pages[0]) for _ in range(runs)]
            alarms = [await page_load(context, *pages[1]) for _ in range(runs)]
            return fleet, alarms
        finally:
            await browser.close()


def stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
        "max_ms": round(ordered[-1], 1),
    }


async def run(runs: int, postgres: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gh-bench-central-dash-") as folder:
        tmp = Path(folder)
        now = time.time()
        started = time.monotonic()
        pems, items = batches(now)
        with database(tmp, postgres) as db:
            service = CentralService(make_config(tmp, db, pems))
            console = ensure_console(service, tmp)
            for i in range(0, len(items), 100):
                outcomes = service.ingestor.ingest_many(items[i : i + 100], transport="https")
                bad = [o for o in outcomes if o.ack is None]
                assert not bad, bad[0]
            fill_s = time.monotonic() - started
            async with service:
                url = f"http://127.0.0.1:{service.api_port}"
                async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:
                    code = read_setup_code(console.data_dir, file_name=SETUP_CODE_FILE)
                    response = await client.post(
                        "/console/api/setup", json={**ADMIN, "code": code}, headers=XHR
                    )
                    assert response.status_code == 201, response.text
                    token = {"Authorization": "Bearer bench-token"}
                    fleet = await client.get("/api/v1/fleet", params={"limit": 1000}, headers=token)
                    active = await client.get("/api/v1/estates", headers=token)
                    total_active = sum(sum(e["active_alarms"].values()) for e in active.json())
                    assert len(fleet.json()) == GATEWAYS, len(fleet.json())
                    assert total_active == GATEWAYS * ALARMS_PER_GATEWAY, total_active
                    cookies = [{"name": k, "value": v, "url": url} for k, v in client.cookies.items()]
                fleet_ms, alarm_ms = await measure(url, cookies, runs)
        return {
            "backend": "postgresql" if postgres else "sqlite",
            "gateways": GATEWAYS,
            "estates": ESTATES,
            "active_alarms": total_active,
            "runs": runs,
            "fill_s": round(fill_s, 1),
            "fleet": stats(fleet_ms),
            "alarms": stats(alarm_ms),
            "fleet_all_ms": [round(v, 1) for v in fleet_ms],
            "alarms_all_ms": [round(v, 1) for v in alarm_ms],
        }


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.central_dashboard")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--postgres", action="store_true", help="a private PostgreSQL instead of SQLite")
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args.runs, args.postgres))
    verdict = all(figures[k]["median_ms"] <= TARGET_MS for k in ("fleet", "alarms"))
    result = {
        "bench": "central_dashboard",
        "summary": {
            "backend": figures["backend"],
            "fleet_median_ms": figures["fleet"]["median_ms"],
            "alarms_median_ms": figures["alarms"]["median_ms"],
            "target_ms": TARGET_MS,
            "meets_target": verdict,
        },
        **figures,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(f"backend {figures['backend']}: {GATEWAYS} gateways, {figures['active_alarms']} active alarms "
          f"(ingested in {figures['fill_s']} s)")  # fmt: skip
    for key in ("fleet", "alarms"):
        s = figures[key]
        print(f"  {key:7s} page load: median {s['median_ms']} ms, p95 {s['p95_ms']} ms, max {s['max_ms']} ms "
              f"(target <= {TARGET_MS:.0f} ms)")  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "central_dashboard_postgres.json" if args.postgres else "central_dashboard.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
