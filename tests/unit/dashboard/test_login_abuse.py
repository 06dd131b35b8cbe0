"""Sign-in under attack (issue 17, item 3), against the real app from several LAN addresses.

Clients bind to other loopback addresses (127.0.0.2, 127.0.0.3) to play other hosts: a script
on one host must neither lock the duty officer out of the duty room's PC, nor starve its sign-in,
nor learn which accounts exist; the first administrator needs the setup code.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

import httpx

from edge.dashboard.accounts import AccountStore
from edge.dashboard.setup_code import SETUP_CODE_FILE, matches
from edge.dashboard.throttle import LoginThrottle
from tests.unit.dashboard.conftest import ADMIN, XHR, Running, add_user, login, setup_admin, setup_code


def _from(dash: Running, address: str) -> httpx.AsyncClient:
    """A client whose connections come from ``address`` (another host, as the server sees it)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=dash.server.url, timeout=30.0, transport=transport)


async def _try(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/login", json={"username": username, "password": password}, headers=XHR)


async def test_an_attacker_cannot_lock_the_duty_officer_out_of_the_duty_room(dash: Running) -> None:
    csrf = await setup_admin(dash.client)
    await add_user(dash.client, csrf, "duty", "operator")
    async with _from(dash, "127.0.0.2") as attacker:
        answers = []
        for name in ("duty", "admin"):
            for _ in range(3):
                answers.append((await _try(attacker, name, "guess-guess")).status_code)
                dash.gateway.clock.advance(61)  # past the host's backoff, inside the 15 min lock
        assert answers == [401, 401, 423, 401, 401, 423]
        # the attacker's host is locked out of both accounts, even with the right password...
        assert (await _try(attacker, "duty", "duty-password")).status_code == 423
    # ...while the duty officer signs in from the duty room at shift change, admins too
    async with _from(dash, "127.0.0.3") as duty_room:
        await login(duty_room, "duty", "duty-password")
        await login(duty_room, "admin", ADMIN["password"])
    users = {u["username"]: u for u in (await dash.client.get("/api/admin/users")).json()["users"]}
    assert users["duty"]["locked"] is True  # shown to the administrator, who can unlock it
    assert dash.server.ctx is not None
    assert dash.server.ctx.accounts.locked_sources("duty", dash.gateway.clock.wall()) == ["127.0.0.2"]


async def test_every_failure_gets_the_same_answer(dash: Running) -> None:
    csrf = await setup_admin(dash.client)
    now = dash.gateway.clock.wall()
    await add_user(dash.client, csrf, "duty", "operator")
    await add_user(dash.client, csrf, "gone", "viewer")
    await add_user(dash.client, csrf, "temp", "viewer", valid_until=now - 1)
    headers = {"X-CSRF-Token": csrf}
    assert (
        await dash.client.patch("/api/admin/users/gone", json={"disabled": True}, headers=headers)
    ).is_success
    cases = [("duty", "wrong-password"), ("nobody", "any-password"), ("gone", "gone-password"),
             ("temp", "temp-password")]  # fmt: skip
    for i, (name, password) in enumerate(cases):
        async with _from(dash, f"127.0.1.{i + 1}") as client:  # one address each: no backoff in the way
            first = [await _try(client, name, password) for _ in range(3)]
            assert [(r.status_code, r.json()) for r in first[:2]] == [
                (401, {"error": "bad_credentials", "attempts_left": 2}),
                (401, {"error": "bad_credentials", "attempts_left": 1}),
            ]
            # the third failure locks the name from this address, known or not, and says so alike
            assert (first[2].status_code, first[2].json()) == (
                423,
                {"error": "locked", "locked_until": now + 900},
            )


async def test_an_unknown_name_costs_a_password_hash(tmp_path: Path) -> None:
    # Without the dummy hash an unknown name answered in microseconds, a wrong password in tens
    # of milliseconds: a clock was enough to list the accounts.
    store = AccountStore(tmp_path / "a.db")
    try:
        await store.create_user("duty", "duty-password", role="operator", now=0.0)

        async def timed(name: str, i: int) -> float:
            start = time.perf_counter()
            result = await store.login(name, "not-the-password", now=float(i), ip=f"10.0.0.{i}")
            assert result.status == "bad_credentials"
            return time.perf_counter() - start

        known = sorted([await timed("duty", i) for i in range(1, 4)])[1]
        unknown = sorted([await timed(f"ghost{i}", i + 10) for i in range(1, 4)])[1]
        assert unknown > known * 0.2, (unknown, known)
    finally:
        store.close()


async def test_a_flood_from_one_host_is_throttled_and_does_not_starve_another(dash: Running) -> None:
    await setup_admin(dash.client)
    async with _from(dash, "127.0.0.2") as script, _from(dash, "127.0.0.3") as duty_room:
        flood = [asyncio.create_task(_try(script, f"user{i}", "guess-guess")) for i in range(40)]
        await login(duty_room, "admin", ADMIN["password"])  # answered while the flood runs
        answers = await asyncio.gather(*flood)
    codes = [r.status_code for r in answers]
    # one attempt in flight per host, then a growing wait: most of the flood never hashes
    assert codes.count(429) >= 30, codes
    throttled = next(r for r in answers if r.status_code == 429)
    assert throttled.json()["error"] == "throttled" and int(throttled.headers["retry-after"]) >= 1


def test_the_throttle_backs_off_per_source_and_forgets() -> None:
    throttle = LoginThrottle(free_failures=2, base_s=1.0, max_s=8.0, forget_s=100.0)
    waits = []
    now = 0.0
    for _ in range(7):
        assert throttle.admit("a", now) == 0.0
        assert throttle.admit("a", now) == 1.0  # a second attempt while one runs
        throttle.done("a", now, failed=True)
        waits.append(throttle.retry_after("a", now))
        now += waits[-1]
    assert waits == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert throttle.admit("b", now) == 0.0  # another host is not affected
    assert throttle.admit("a", now + 200) == 0.0  # quiet for forget_s: a clean slate
    throttle.done("a", now + 200, failed=True)
    assert throttle.failures("a") == 1


async def test_setup_needs_the_code_from_the_data_folder(dash: Running) -> None:
    path = dash.gateway.site.data_dir / SETUP_CODE_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    code = setup_code(dash.client)
    assert dash.server.setup_code == code
    session = (await dash.client.get("/api/session")).text
    assert code not in session and code.replace("-", "") not in session
    for body in (ADMIN, {**ADMIN, "code": "AAAA-BBBB-CCCC"}):
        refused = await dash.client.post("/api/setup", json=body, headers=XHR)
        assert refused.status_code == 403 and refused.json() == {"error": "setup_code"}
    # typed back in lower case without the dashes is fine
    relaxed = {**ADMIN, "code": code.replace("-", "").lower()}
    assert (await dash.client.post("/api/setup", json=relaxed, headers=XHR)).status_code == 201
    assert not path.exists()  # used up
    audit = (await dash.client.get("/api/admin/audit", params={"action": "setup"})).json()["rows"]
    assert [r["result"] for r in audit] == ["ok", "refused", "refused"]


async def test_guessing_the_setup_code_is_throttled(dash: Running) -> None:
    codes = []
    for _ in range(8):
        response = await dash.client.post("/api/setup", json={**ADMIN, "code": "2222-2222-2222"}, headers=XHR)
        codes.append(response.status_code)
    assert codes == [403] * 6 + [429] * 2
    assert matches(setup_code(dash.client), dash.server.setup_code)
