"""Schemathesis against both OpenAPI specs: central's REST API (the real ``gatehouse central``
process) and the LAN dashboard's (the real dashboard server on a test gateway), authenticated.

Every generated request, valid or not, must be answered below 500: a bad request is the client's
fault (4xx) and never crashes a handler. ``GATEHOUSE_OPENAPI_EXAMPLES`` sets the examples per
operation (a few in ``make test``, many more in ``make chaos``). Live streams are left out (they
answer by never ending).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from cloud_sync.keys import ensure_signing_key, generate_private_key, save_public_key
from tests.support import free_port, wait_until_sync

EXAMPLES = int(os.environ.get("GATEHOUSE_OPENAPI_EXAMPLES", "8"))
TOKEN = "fuzz-token-0123456789"
STREAMS = r"(stream|/events/live|/sse)"

_fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _answers(url: str, proc: subprocess.Popen[bytes] | None) -> bool:
    if proc is not None and proc.poll() is not None:
        raise AssertionError(f"exited with {proc.returncode}")
    try:
        return httpx.get(url, timeout=2.0).status_code < 500
    except httpx.HTTPError:
        return False


def _wait_http(url: str, proc: subprocess.Popen[bytes] | None = None, timeout_s: float = 60.0) -> None:
    wait_until_sync(
        lambda: _answers(url, proc), timeout_s=timeout_s, interval_s=0.1, message=f"{url} to answer"
    )


# -- central --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def central_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from ruamel.yaml import YAML

    folder = Path(tmp_path_factory.mktemp("central"))
    key_path, pub_path = folder / "central-signing.key", folder / "central-signing.pub"
    ensure_signing_key(key_path, pub_path)
    save_public_key(generate_private_key().public_key(), folder / "gw-fuzz.pub")
    port = free_port()
    config = {
        "database": str(folder / "central.db"),
        "signing_key": str(key_path),
        "api": {
            "host": "127.0.0.1",
            "port": port,
            "tokens": [{"name": "fuzz", "sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}],
        },
        "gateways": [{"id": "gw-fuzz", "keys": [{"file": str(folder / "gw-fuzz.pub")}]}],
    }
    with (folder / "central.yaml").open("w") as fh:
        YAML().dump(config, fh)
    log = (folder / "central.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "central", "--config", str(folder / "central.yaml")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/openapi.json", proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _fuzz_every_operation(schema: Any, base_url: str, **call: Any) -> int:
    """Run each operation's generated cases against ``base_url``; returns the operations run."""
    operations = [result.ok() for result in schema.exclude(path_regex=STREAMS).get_all_operations()]
    failures: list[str] = []
    for operation in operations:

        @_fuzz
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call(base_url=base_url, timeout=30, **call)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
            )

        try:
            run()
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
    assert not failures, "\n".join(failures)
    return len(operations)


def test_central_csv_history_of_a_non_ascii_point_is_not_a_500(central_url: str) -> None:
    # Found by the fuzzer below: the CSV file name header carried "Ā" and could not be encoded.
    response = httpx.get(
        f"{central_url}/api/v1/points/s/d/%C4%80/history",
        params={"from": 0, "to": 10, "format": "csv"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 200, response.text
    assert 'filename="s_d__.csv"' in response.headers["content-disposition"]


def test_central_api_never_answers_5xx(central_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{central_url}/openapi.json")
    ran = _fuzz_every_operation(schema, central_url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ran >= 5


# -- the LAN dashboard ----------------------------------------------------------------------------


class _Dashboard:
    """The dashboard server of a test gateway, on its own event loop in a thread (schemathesis
    calls it synchronously from the test)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.url = ""
        self.spec: dict[str, Any] = {}
        self.cookies: dict[str, str] = {}
        self.csrf = ""
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._thread, name="dashboard", daemon=True)

    def _thread(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by the fixture
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        from edge.dashboard.app import build_app
        from tests.unit.dashboard.conftest import setup_admin, start

        async for running in start(self.folder):
            self.url = running.server.url
            self.csrf = await setup_admin(running.client)
            self.cookies = dict(running.client.cookies)
            assert running.server.ctx is not None
            self.spec = build_app(running.server.ctx).openapi()
            self.ready.set()
            await asyncio.to_thread(self.stop.wait)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Dashboard]:
    dash = _Dashboard(Path(tmp_path_factory.mktemp("dashboard")))
    dash.thread.start()
    assert dash.ready.wait(60), "the dashboard did not start"
    if dash.error is not None:
        raise dash.error
    try:
        yield dash
    finally:
        dash.stop.set()
        dash.thread.join(30)


def test_dashboard_api_never_answers_5xx(dashboard: _Dashboard) -> None:
    schema = schemathesis.openapi.from_dict(dashboard.spec)
    headers = {"X-CSRF-Token": dashboard.csrf, "X-Requested-With": "gatehouse"}
    ran = _fuzz_every_operation(schema, dashboard.url, headers=headers, cookies=dashboard.cookies)
    assert ran >= 5
