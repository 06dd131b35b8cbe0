"""Accounts and security of the dashboard API against the real app and a real SQLite file."""

from __future__ import annotations

from tests.unit.dashboard.conftest import ADMIN, XHR, Running, add_user, login, setup_admin, setup_code


async def test_first_start_needs_setup_and_setup_happens_once(dash: Running) -> None:
    session = (await dash.client.get("/api/session")).json()
    assert session["setup_needed"] is True and session["user"] is None
    assert session["site"] == {"id": "testsite", "name": "Test estate", "name_zh": "测试小区"}
    # There is no default account to log in with.
    refused = await dash.client.post(
        "/api/login", json={"username": "admin", "password": "admin"}, headers=XHR
    )
    assert refused.status_code == 401
    await setup_admin(dash.client)
    session = (await dash.client.get("/api/session")).json()
    assert session["setup_needed"] is False
    assert session["user"]["role"] == "admin" and "users" in session["user"]["permissions"]
    again = await dash.new_client().post("/api/setup", json={**ADMIN, "username": "evil"}, headers=XHR)
    assert again.status_code == 409


async def test_setup_without_the_xhr_header_is_refused(dash: Running) -> None:
    response = await dash.client.post("/api/setup", json=ADMIN)
    assert response.status_code == 403 and response.json() == {"error": "csrf"}
    code = setup_code(dash.client)
    short = await dash.client.post(
        "/api/setup", json={**ADMIN, "password": "short", "code": code}, headers=XHR
    )
    assert short.status_code == 400


async def test_login_sets_httponly_strict_session_cookie(dash: Running) -> None:
    await setup_admin(dash.client)
    async with dash.new_client() as other:
        response = await other.post(
            "/api/login", json={"username": "admin", "password": ADMIN["password"]}, headers=XHR
        )
        assert response.status_code == 200
        cookies = response.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("gh_session="))
        csrf = next(c for c in cookies if c.startswith("gh_csrf="))
        assert "HttpOnly" in session and "SameSite=strict" in session and "Path=/" in session
        assert "HttpOnly" not in csrf and "SameSite=strict" in csrf
        me = (await other.get("/api/session")).json()
        assert me["user"]["username"] == "admin" and me["csrf"] == response.json()["csrf"]


async def test_lockout_after_three_wrong_passwords_and_admin_unlock(dash: Running) -> None:
    csrf = await setup_admin(dash.client)
    await add_user(dash.client, csrf, "duty", "operator")
    async with dash.new_client() as other:
        bad = {"username": "duty", "password": "wrong-password"}
        first = await other.post("/api/login", json=bad, headers=XHR)
        assert first.status_code == 401 and first.json() == {"error": "bad_credentials", "attempts_left": 2}
        second = await other.post("/api/login", json=bad, headers=XHR)
        assert second.json()["attempts_left"] == 1
        third = await other.post("/api/login", json=bad, headers=XHR)
        assert third.status_code == 423 and third.json()["error"] == "locked"
        assert third.json()["locked_until"] == dash.gateway.clock.wall() + 15 * 60
        # Now even the right password is refused.
        right = {"username": "duty", "password": "duty-password"}
        assert (await other.post("/api/login", json=right, headers=XHR)).status_code == 423
        users = (await dash.client.get("/api/admin/users")).json()["users"]
        assert next(u for u in users if u["username"] == "duty")["locked"] is True
        unlock = await dash.client.patch(
            "/api/admin/users/duty", json={"unlock": True}, headers={"X-CSRF-Token": csrf}
        )
        assert unlock.status_code == 200 and unlock.json()["user"]["locked"] is False
        assert (await other.post("/api/login", json=right, headers=XHR)).status_code == 200
    audit = (await dash.client.get("/api/admin/audit", params={"user": "duty"})).json()["rows"]
    actions = [row["action"] for row in audit]
    assert actions.count("login_failed") == 2 and "lockout" in actions and "login_locked" in actions
    assert all(row["ip"] == "127.0.0.1" for row in audit)


async def test_lock_ends_after_the_lockout_period(dash: Running) -> None:
    csrf = await setup_admin(dash.client)
    await add_user(dash.client, csrf, "tech", "technician")
    async with dash.new_client() as other:
        for _ in range(3):
            await other.post("/api/login", json={"username": "tech", "password": "nope-nope"}, headers=XHR)
        right = {"username": "tech", "password": "tech-password"}
        assert (await other.post("/api/login", json=right, headers=XHR)).status_code == 423
        dash.gateway.clock.advance(15 * 60 + 1)
        assert (await other.post("/api/login", json=right, headers=XHR)).status_code == 200


async def test_post_without_csrf_token_is_refused(dash: Running) -> None:
    csrf = await setup_admin(dash.client)
    dash.gateway.alarms.raise_alarm("testsite/m1/fire/a1")
    body = {"key": "testsite/m1/fire/a1"}
    missing = await dash.client.post("/api/alarms/ack", json=body)
    assert missing.status_code == 403 and missing.json() == {"error": "csrf"}
    wrong = await dash.client.post("/api/alarms/ack", json=body, headers={"X-CSRF-Token": "x" + csrf})
    assert wrong.status_code == 403
    assert dash.gateway.alarms.rows["testsite/m1/fire/a1"]["unacked"] is True
    ok = await dash.client.post("/api/alarms/ack", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and ok.json() == {"ok": True}
    refused = (await dash.client.get("/api/admin/audit", params={"action": "csrf_refused"})).json()["rows"]
    assert len(refused) == 2


async def test_viewer_cannot_acknowledge_but_operator_can(dash: Running) -> None:
    csrf = await setup_admin(dash.client)
    await add_user(dash.client, csrf, "watcher", "viewer")
    await add_user(dash.client, csrf, "duty", "operator")
    dash.gateway.alarms.raise_alarm("testsite/m1/fire/a1")
    async with dash.new_client() as viewer:
        token = await login(viewer, "watcher", "watcher-password")
        assert (await viewer.get("/api/alarms")).status_code == 200
        response = await viewer.post(
            "/api/alarms/ack", json={"key": "testsite/m1/fire/a1"}, headers={"X-CSRF-Token": token}
        )
        assert response.status_code == 403
        assert response.json() == {"error": "forbidden", "permission": "ack"}
        assert (await viewer.get("/api/admin/users")).status_code == 403
    async with dash.new_client() as operator:
        token = await login(operator, "duty", "duty-password")
        response = await operator.post(
            "/api/alarms/ack",
            json={"key": "testsite/m1/fire/a1", "comment": "已确认"},
            headers={"X-CSRF-Token": token},
        )
        assert response.json() == {"ok": True}
    assert dash.gateway.alarms.log[0]["by"] == "duty" and dash.gateway.alarms.log[0]["comment"] == "已确认"


async def test_unauthenticated_api_answers_login(dash: Running) -> None:
    response = await dash.client.get("/api/alarms")
    assert response.status_code == 401 and response.json() == {"error": "login"}


async def test_session_idle_timeout(dash: Running) -> None:
    csrf = await setup_admin(dash.client)
    await add_user(dash.client, csrf, "duty", "operator", session_timeout_min=5)
    async with dash.new_client() as other:
        await login(other, "duty", "duty-password")
        dash.gateway.clock.advance(4 * 60)
        assert (await other.get("/api/alarms")).status_code == 200  # activity keeps it alive
        dash.gateway.clock.advance(4 * 60)
        assert (await other.get("/api/alarms")).status_code == 200
        dash.gateway.clock.advance(5 * 60 + 1)
        response = await other.get("/api/alarms")
        assert response.status_code == 401 and response.json() == {"error": "session"}
        assert (await other.get("/api/session")).json()["user"] is None


async def test_expired_and_disabled_accounts(dash: Running) -> None:
    csrf = await setup_admin(dash.client)
    now = dash.gateway.clock.wall()
    await add_user(dash.client, csrf, "temp", "viewer", valid_until=now + 60)
    await add_user(dash.client, csrf, "gone", "viewer")
    headers = {"X-CSRF-Token": csrf}
    assert (
        await dash.client.patch("/api/admin/users/gone", json={"disabled": True}, headers=headers)
    ).status_code == 200
    async with dash.new_client() as other:
        gone = await other.post(
            "/api/login", json={"username": "gone", "password": "gone-password"}, headers=XHR
        )
        # the same answer as a wrong password: nobody learns that the account exists
        assert gone.status_code == 401 and gone.json() == {"error": "bad_credentials", "attempts_left": 2}
        await login(other, "temp", "temp-password")
        dash.gateway.clock.advance(61)
        assert (await other.get("/api/alarms")).json() == {"error": "session"}
        expired = await other.post(
            "/api/login", json={"username": "temp", "password": "temp-password"}, headers=XHR
        )
        assert expired.status_code == 401 and expired.json() == {
            "error": "bad_credentials",
            "attempts_left": 2,
        }
    audit = (await dash.client.get("/api/admin/audit", params={"action": "login_failed"})).json()["rows"]
    assert [(r["user"], r["detail"]) for r in audit] == [("temp", "expired"), ("gone", "disabled")]


async def test_the_last_administrator_cannot_be_demoted(dash: Running) -> None:
    csrf = await setup_admin(dash.client)
    headers = {"X-CSRF-Token": csrf}
    response = await dash.client.patch("/api/admin/users/admin", json={"role": "viewer"}, headers=headers)
    assert response.status_code == 409 and response.json()["error"] == "last_admin"


async def test_logout_ends_the_session(dash: Running) -> None:
    csrf = await setup_admin(dash.client)
    assert (await dash.client.post("/api/logout")).status_code == 403  # CSRF applies to logout too
    assert (await dash.client.post("/api/logout", headers={"X-CSRF-Token": csrf})).status_code == 200
    assert (await dash.client.get("/api/alarms")).status_code == 401
    rows = dash.server.ctx.accounts.audit_rows(action="logout") if dash.server.ctx else []
    assert rows and rows[0]["user"] == "admin" and rows[0]["ip"] == "127.0.0.1"


async def test_language_is_stored_per_user(dash: Running) -> None:
    csrf = await setup_admin(dash.client)
    response = await dash.client.post("/api/me/lang", json={"lang": "en"}, headers={"X-CSRF-Token": csrf})
    assert response.json()["user"]["lang"] == "en"
    assert (await dash.client.get("/api/session")).json()["user"]["lang"] == "en"
    bad = await dash.client.post("/api/me/lang", json={"lang": "fr"}, headers={"X-CSRF-Token": csrf})
    assert bad.status_code == 422


async def test_user_patch_changes_fields_and_resets_password(dash: Running) -> None:
    csrf = await setup_admin(dash.client)
    headers = {"X-CSRF-Token": csrf}
    await add_user(dash.client, csrf, "duty", "operator", valid_until=dash.gateway.clock.wall() + 3600)
    patch = {
        "name": "张三",
        "phone": None,
        "valid_until": None,
        "role": "technician",
        "password": "new-password-1",
    }
    response = await dash.client.patch("/api/admin/users/duty", json=patch, headers=headers)
    assert response.status_code == 200, response.text
    user = response.json()["user"]
    assert user["name"] == "张三" and user["role"] == "technician" and user["valid_until"] is None
    async with dash.new_client() as other:
        await login(other, "duty", "new-password-1")
    missing = await dash.client.patch("/api/admin/users/nobody", json={"name": "x"}, headers=headers)
    assert missing.status_code == 404
