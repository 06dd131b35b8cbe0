"""Central console sign-in: first run with the setup code, uniform failures, lockout per
account and address with its unlock paths, CSRF, and the audit log with user and address."""

from __future__ import annotations

import os
import stat

from cloud_sync.central.console.__main__ import main as console_cli
from cloud_sync.central.console.context import SETUP_CODE_FILE
from tests.unit.cloud_sync.console.conftest import ADMIN, XHR, Console, admin_client, csrf, setup_code


async def test_first_run_needs_the_setup_code_written_0600(console: Console) -> None:
    path = console.data_dir / SETUP_CODE_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    async with console.client() as client:
        session = (await client.get("/console/api/session")).json()
        assert session == {"user": None, "csrf": None, "setup_needed": True}
        wrong = await client.post("/console/api/setup", json={**ADMIN, "code": "AAAA-BBBB-CCCC"}, headers=XHR)
        assert wrong.status_code == 403 and wrong.json()["error"] == "setup_code"
        no_xhr = await client.post("/console/api/setup", json={**ADMIN, "code": setup_code(console)})
        assert no_xhr.status_code == 403 and no_xhr.json()["error"] == "csrf"
        # case, spaces and dashes do not matter when the code is typed back
        typed = setup_code(console).lower().replace("-", " ")
        done = await client.post("/console/api/setup", json={**ADMIN, "code": typed}, headers=XHR)
        assert done.status_code == 201, done.text
        assert done.json()["user"]["role"] == "admin" and done.json()["user"]["estates"] is None
        assert not path.exists()
        again = await client.post("/console/api/setup", json={**ADMIN, "code": typed}, headers=XHR)
        assert again.status_code == 409
        me = (await client.get("/console/api/session")).json()
        assert me["user"]["username"] == "root" and me["setup_needed"] is False


async def test_every_failure_gets_the_same_answer_and_three_lock_from_that_address(console: Console) -> None:
    admin = await admin_client(console)
    created = await admin.post(
        "/console/api/users",
        json={"username": "ops", "password": "Ops-pass-2026", "role": "operator"},
        headers=csrf(admin),
    )
    assert created.status_code == 201, created.text
    async with console.client("10.0.0.7") as attacker, console.client("10.0.0.8") as desk:
        bad = {"username": "ops", "password": "wrong-password"}
        unknown = {"username": "nobody", "password": "wrong-password"}
        first = await attacker.post("/console/api/login", json=bad, headers=XHR)
        ghost = await attacker.post("/console/api/login", json=unknown, headers=XHR)
        assert first.status_code == ghost.status_code == 401
        assert first.json() == ghost.json() == {"error": "bad_credentials", "attempts_left": 2}
        await attacker.post("/console/api/login", json=bad, headers=XHR)
        third = await attacker.post("/console/api/login", json=bad, headers=XHR)
        assert third.status_code == 423 and third.json()["error"] == "locked"
        good = {"username": "ops", "password": "Ops-pass-2026"}
        still = await attacker.post("/console/api/login", json=good, headers=XHR)
        assert still.status_code == 423  # the right password does not open a lock
        # another address is not locked out by the first one's failures
        other = await desk.post("/console/api/login", json=good, headers=XHR)
        assert other.status_code == 200, other.text
        listed = (await admin.get("/console/api/users")).json()["users"]
        ops = next(u for u in listed if u["username"] == "ops")
        assert ops["locked"] is True and ops["locked_from"] == ["10.0.0.7"]
        unlocked = await admin.post("/console/api/users/ops/unlock", headers=csrf(admin))
        assert unlocked.status_code == 200 and unlocked.json()["user"]["locked"] is False
        again = await attacker.post("/console/api/login", json=good, headers=XHR)
        assert again.status_code == 200, again.text
    audit = (await admin.get("/console/api/audit")).json()["items"]
    actions = [(a["action"], a["user"], a["ip"]) for a in audit]
    assert ("lockout", "ops", "10.0.0.7") in actions
    assert ("login_failed", "nobody", "10.0.0.7") in actions
    assert ("unlock", "root", "10.0.0.1") in actions
    assert ("login", "ops", "10.0.0.8") in actions
    await admin.aclose()


async def test_a_lock_ends_after_fifteen_minutes_and_the_server_tool_clears_it(console: Console) -> None:
    admin = await admin_client(console)
    async with console.client("10.0.0.9") as client:
        for _ in range(3):
            await client.post(
                "/console/api/login", json={"username": "root", "password": "nope-nope"}, headers=XHR
            )
        good = {"username": "root", "password": ADMIN["password"]}
        assert (await client.post("/console/api/login", json=good, headers=XHR)).status_code == 423
        console.clock[0] += 15 * 60 + 1
        assert (await client.post("/console/api/login", json=good, headers=XHR)).status_code == 200
        for _ in range(3):
            await client.post(
                "/console/api/login", json={"username": "root", "password": "nope-nope"}, headers=XHR
            )
        assert (await client.post("/console/api/login", json=good, headers=XHR)).status_code == 423
        assert console_cli(["unlock", str(console.data_dir / "console.db"), "root"]) == 0
        assert (await client.post("/console/api/login", json=good, headers=XHR)).status_code == 200
    await admin.aclose()


async def test_a_change_needs_the_csrf_token(console: Console) -> None:
    admin = await admin_client(console)
    body = {"username": "v", "password": "Viewer-pass-1", "role": "viewer"}
    refused = await admin.post("/console/api/users", json=body, headers=XHR)
    assert refused.status_code == 403 and refused.json()["error"] == "csrf"
    ok = await admin.post("/console/api/users", json=body, headers=csrf(admin))
    assert ok.status_code == 201
    # on /api/v1 a state-changing request with the cookie but without the token has no principal
    assert (await admin.post("/api/v1/whoami")).json() == {"principal": None}
    assert (await admin.post("/api/v1/whoami", headers=csrf(admin))).json()["principal"]["name"] == "root"
    logout = await admin.post("/console/api/logout", headers=csrf(admin))
    assert logout.status_code == 200
    assert (await admin.get("/api/v1/whoami")).json() == {"principal": None}
    await admin.aclose()
