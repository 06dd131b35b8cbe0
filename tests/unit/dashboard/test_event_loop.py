"""The dashboard never blocks the event loop that also polls the devices (issue 17, item 5).

* the alarm history search and its CSV run on a worker thread, and page by key;
* the trend history has its own file, so its writer holding the lock does not make a sign-in
  wait out SQLite's busy timeout;
* a crashed background task is restarted and shown on /healthz and the health page.

"Not on the loop" is proven with a condition, not a stopwatch: the slow query waits for a flag
that only the event loop can set. On the loop, nothing would set it (the query would time out
waiting); on a worker thread, the loop runs on and sets it at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from cloud_sync.webauth.accounts import AccountStore
from edge.dashboard.history import trends_path
from edge.dashboard.supervise import Supervisor
from tests.support import wait_until
from tests.unit.dashboard.conftest import ADMIN, XHR, Running, setup_admin

_GIVE_UP_S = 20.0  # how long a query on the loop would wait for a flag nobody can set


class _LoopProbe:
    """A stand-in for a slow query: it waits until the event loop has run a callback."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.loop_ran = threading.Event()
        self.calls: list[bool] = []  # per call: did the loop run while the query was going on?

    def query(self) -> None:
        self.started.set()
        self.calls.append(self.loop_ran.wait(_GIVE_UP_S))

    async def watch(self) -> None:
        """The loop's side (a poll tick, say): sets the flag as soon as a query has started."""
        await wait_until(self.started.is_set, interval_s=0.005, message="the query starting")
        self.loop_ran.set()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("history", "/api/alarms/history"),
        ("history", "/api/alarms/history.csv"),
        ("statistics", "/api/alarms/stats"),
        ("linkage_log", "/api/linkage"),
    ],
)
async def test_history_statistics_and_logs_run_off_the_loop(
    dash: Running, monkeypatch: pytest.MonkeyPatch, method: str, path: str
) -> None:
    await setup_admin(dash.client)
    alarms = dash.gateway.alarms
    alarms.raise_alarm("testsite/m1/smoke/fire", zh="火警", en="Fire")
    real = getattr(alarms, method)
    probe = _LoopProbe()

    def slow(*args: Any, **kwargs: Any) -> Any:
        probe.query()
        return real(*args, **kwargs)

    monkeypatch.setattr(alarms, method, slow)
    watcher = asyncio.create_task(probe.watch())
    response = await dash.client.get(path, params={"text": "火"} if method == "history" else None)
    await watcher
    assert response.status_code == 200, response.text
    assert probe.calls == [True], f"{path}: the query ran on the event loop"


async def test_history_pages_by_key(dash: Running) -> None:
    await setup_admin(dash.client)
    alarms = dash.gateway.alarms
    for i in range(7):
        alarms.raise_alarm(f"testsite/m1/p{i}/fire", zh=f"火警{i}", en=f"Fire {i}")
        if i % 2:
            dash.gateway.clock.advance(1)  # pairs share a timestamp: the id breaks the tie
    seen: list[str] = []
    before: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if before is not None:
            params["before"] = before
        body = (await dash.client.get("/api/alarms/history", params=params)).json()
        seen += [r["key"] for r in body["rows"]]
        pages += 1
        before = body["next"]
        if before is None:
            break
    assert pages == 3
    assert seen == [f"testsite/m1/p{i}/fire" for i in reversed(range(7))]
    bad = await dash.client.get("/api/alarms/history", params={"before": "1; DROP TABLE x"})
    assert bad.status_code == 422


async def test_csv_export_reads_the_history_page_by_page(
    dash: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge.dashboard import routes_alarms

    monkeypatch.setattr(routes_alarms, "_CSV_PAGE", 2)
    await setup_admin(dash.client)
    alarms = dash.gateway.alarms
    for i in range(5):
        alarms.raise_alarm(f"testsite/m1/p{i}/fire", zh=f"火警{i}", en=f"Fire {i}")
    calls: list[Any] = []
    real = alarms.history

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("before"))
        return real(*args, **kwargs)

    monkeypatch.setattr(alarms, "history", counted)
    body = (await dash.client.get("/api/alarms/history.csv")).content.decode("utf-8-sig")
    keys = [line.split(",")[1] for line in body.strip().splitlines()[1:]]
    assert keys == [f"testsite/m1/p{i}/fire" for i in reversed(range(5))]
    assert len(calls) == 3 and calls[0] is None and all(c is not None for c in calls[1:])
    limited = (await dash.client.get("/api/alarms/history.csv", params={"limit": 3})).content
    assert len(limited.decode("utf-8-sig").strip().splitlines()) == 1 + 3


async def test_trend_writer_holding_its_file_does_not_stall_sign_in(dash: Running) -> None:
    await setup_admin(dash.client)
    db = dash.gateway.site.data_dir / "dashboard.db"
    trends = trends_path(db)
    assert trends.exists() and trends != db
    # The trend writer (a worker thread) in the middle of a long transaction:
    holder = sqlite3.connect(trends, isolation_level=None, timeout=1)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("DELETE FROM trend")
        async with dash.new_client() as other:
            response = await other.post(
                "/api/login", json={"username": ADMIN["username"], "password": ADMIN["password"]}, headers=XHR
            )
        assert response.status_code == 200, response.text  # not "database is locked" after 5 s
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def test_crashed_housekeeping_is_restarted_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit.dashboard.conftest import start

    broken = {"on": True}
    calls: list[float] = []
    real = AccountStore.purge_sessions

    def purge_sessions(self: AccountStore, now: float) -> int:
        calls.append(now)
        if broken["on"]:
            raise sqlite3.OperationalError("disk I/O error")
        return real(self, now)

    monkeypatch.setattr(AccountStore, "purge_sessions", purge_sessions)
    async for dash in start(tmp_path):
        await _restarted_and_reported(dash, broken, calls)


async def _restarted_and_reported(dash: Running, broken: dict[str, bool], calls: list[float]) -> None:
    assert dash.server.ctx is not None
    tasks = dash.server.ctx.tasks

    async def reported() -> Any:
        body = (await dash.client.get("/healthz")).json()
        states = {t["name"]: t for t in body["checks"]["dashboard_tasks"]}
        problems = [p for p in body["problems"] if p["check"] == "dashboard"]
        return states["sessions"]["restarts"] >= 1 and any("sessions" in p["detail"] for p in problems)

    await wait_until(reported, timeout_s=30, message="/healthz reporting the crashed task")
    await setup_admin(dash.client)
    health = (await dash.client.get("/api/health")).json()
    sessions = next(t for t in health["dashboard"]["tasks"] if t["name"] == "sessions")
    assert sessions["restarts"] >= 1 and "disk I/O error" in sessions["last_error"]

    broken["on"] = False
    count = len(calls)
    await wait_until(lambda: len(calls) > count, timeout_s=30, message="the task run again")
    await wait_until(lambda: tasks.states["sessions"].running, timeout_s=30, message="running again")
    body = (await dash.client.get("/healthz")).json()
    assert not [p for p in body["problems"] if p["check"] == "dashboard"]
    # the other loops were never touched
    assert tasks.states["events"].restarts == 0 and tasks.states["trend"].restarts == 0


async def test_supervisor_restarts_with_growing_pauses_and_never_swallows_a_cancel() -> None:
    runs: list[int] = []
    forever = asyncio.Event()

    async def flaky() -> None:
        runs.append(len(runs))
        if len(runs) <= 2:
            raise RuntimeError(f"bug {len(runs)}")
        await forever.wait()

    supervisor = Supervisor(first_pause_s=0.01)
    task = supervisor.start("flaky", flaky)
    await wait_until(lambda: len(runs) == 3 and supervisor.states["flaky"].running, message="third run")
    state = supervisor.states["flaky"]
    assert state.restarts == 2 and state.last_error == "RuntimeError: bug 2"
    assert not supervisor.failing()
    await supervisor.stop()
    assert task.cancelled()
