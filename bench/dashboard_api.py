"""The dashboard server's side of the duty and site views: API latency and SSE fan-out.

A site of 118 meters (2,006 points, every one with a live value) and 1,000 active alarms (an
in-memory alarm service, as the dashboard's unit tests use) behind the real uvicorn server on
127.0.0.1. Reported: the median and 95th percentile of GET /api/alarms and GET /api/site (JSON
building and transfer; the browser's render time is measured in Chromium by the client's bench),
and SSE fan-out: 10 clients while every point changes 10 times a second for a few seconds — how
many value events each client got (coalesced to ≤ 2/s), and whether any client was dropped.

Run: ``.venv/bin/python -m bench.dashboard_api``; writes ``bench/results/dashboard_api.json``.
Figures from a shared or busy machine are indicative only.
"""

from __future__ import annotations

import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx

from core.model import ManualClock, Quality, Sample
from edge.config.loader import load_site
from edge.dashboard import enter_dashboard
from tests.support import wait_until
from tests.unit.dashboard.fakes import FakeGateway

RESULTS = Path(__file__).resolve().parent / "results" / "dashboard_api.json"
METERS = 118  # x 17 points = 2,006
ALARMS = 1000
REQUESTS = 30
SSE_CLIENTS = 10
SSE_SECONDS = 4.0
XHR = {"X-Requested-With": "gatehouse"}


def _site(tmp: Path) -> Path:
    lines = [
        "site: {id: bench, name_zh: 基准小区}",
        f"gateway: {{id: gw-bench, data_dir: {tmp / 'data'}}}",
        "buses: [{id: lan, type: modbus_tcp, host: 127.0.0.1, port: 1502}]",
        "devices:",
    ]
    for n in range(METERS):
        lines.append(
            f"  - {{id: m{n}, bus: lan, unit: {n % 247 + 1}, host: 10.0.{n // 200}.{n % 200 + 2},"
            f" profile: eastron-sdm630, building: B{n % 6}, zone: Z{n % 20}}}"
        )
    lines.append("dashboard: {listen: '127.0.0.1:0'}")
    path = tmp / "site.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _points(gw: FakeGateway) -> list[str]:
    return [gw.site.point_id(d.id, p.id) for d in gw.site.devices for p in d.points]


async def _timed(client: httpx.AsyncClient, url: str) -> dict[str, float]:
    times = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        response = await client.get(url)
        response.raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
        "bytes": len(response.content),
    }


async def _sse_client(base: str, cookies: httpx.Cookies, stop: asyncio.Event, counts: list[int]) -> None:
    async with (
        httpx.AsyncClient(base_url=base, cookies=cookies, timeout=30) as client,
        client.stream("GET", "/api/events") as response,
    ):
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "values":
                counts.append(len(json.loads(line[5:])["points"]))
            if stop.is_set():
                return


async def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        clock = ManualClock(time.time())
        gw = FakeGateway(load_site(_site(tmp)), clock)
        points = _points(gw)
        gw.live.update([Sample(p, 230.0, Quality.GOOD, clock.wall()) for p in points])
        for i in range(ALARMS):
            gw.alarms.raise_alarm(
                f"bench/m{i % METERS}/p{i}/a", klass=("fire", "fault", "supervisory")[i % 3],
                priority=("critical", "high", "medium", "low")[i % 4], zh=f"报警 {i}", en=f"Alarm {i}",
            )  # fmt: skip
        async with AsyncExitStack() as stack:
            raw = gw.site.config.dashboard
            assert raw is not None
            server = await enter_dashboard(stack, raw, gateway=gw)
            client = await stack.enter_async_context(httpx.AsyncClient(base_url=server.url, timeout=30))
            setup = {"username": "admin", "password": "bench-password", "code": server.setup_code}
            (await client.post("/api/setup", json=setup, headers=XHR)).raise_for_status()
            alarms = await _timed(client, "/api/alarms")
            site = await _timed(client, "/api/site")

            stop = asyncio.Event()
            counts: list[list[int]] = [[] for _ in range(SSE_CLIENTS)]
            readers = [
                asyncio.create_task(_sse_client(server.url, client.cookies, stop, c), name=f"sse-{i}")
                for i, c in enumerate(counts)
            ]
            assert server.ctx is not None
            hub = server.ctx.hub
            await wait_until(lambda: hub.clients >= SSE_CLIENTS, message="every SSE client connected")
            started = time.monotonic()
            updates = 0
            cpu0 = time.process_time()
            while time.monotonic() - started < SSE_SECONDS:
                wall = time.time()
                gw.live.update([Sample(p, 230.0 + updates % 7, Quality.GOOD, wall) for p in points])
                updates += 1
                await asyncio.sleep(0.1)
            cpu_s = time.process_time() - cpu0
            stop.set()
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            events = [len(c) for c in counts]
            sse = {
                "clients": SSE_CLIENTS,
                "seconds": SSE_SECONDS,
                "point_updates": updates * len(points),
                "value_events_per_client_min": min(events),
                "value_events_per_client_max": max(events),
                "points_per_event_median": statistics.median([n for c in counts for n in c] or [0]),
                "dropped_clients": hub.dropped_clients,
                "process_cpu_s": round(cpu_s, 2),
            }
    return {"points": len(points), "alarms": ALARMS, "api_alarms": alarms, "api_site": site, "sse": sse}


def main(argv: list[str]) -> int:
    figures = asyncio.run(run())
    print(f"GET /api/alarms ({figures['alarms']} alarms): {figures['api_alarms']}")
    print(f"GET /api/site ({figures['points']} points): {figures['api_site']}")
    print(f"SSE fan-out: {figures['sse']}")
    summary = {
        "api_alarms_median_ms": figures["api_alarms"]["median_ms"],
        "api_site_median_ms": figures["api_site"]["median_ms"],
        "sse_events_per_client_per_s": round(figures["sse"]["value_events_per_client_max"] / SSE_SECONDS, 2),
        "sse_dropped_clients": figures["sse"]["dropped_clients"],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "summary": summary,
                "figures": figures,
                "python": sys.version.split()[0],
                "machine": platform.machine(),
            },
            ensure_ascii=False,
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
