"""Console roles and estate grants: the principal /api/v1 sees, who may manage accounts, and
that the last administrator with every estate cannot be removed."""

from __future__ import annotations

import httpx

from tests.unit.cloud_sync.console.conftest import XHR, Console, admin_client, csrf


async def _signed_in(console: Console, username: str, password: str) -> httpx.AsyncClient:
    client = console.client("10.0.1.1")
    response = await client.post(
        "/console/api/login", json={"username": username, "password": password}, headers=XHR
    )
    assert response.status_code == 200, response.text
    return client


async def test_roles_and_estates_become_the_api_principal(console: Console) -> None:
    admin = await admin_client(console)
    me = (await admin.get("/api/v1/whoami")).json()["principal"]
    assert me == {
        "name": "root",
        "scopes": ["admin", "command", "metrics", "read", "trust"],
        "estates": None,
        "source": "session",
    }
    for username, role, estates in (("op-a", "operator", ["estate-A"]), ("viewer", "viewer", None)):
        body = {"username": username, "password": "Pass-word-2026", "role": role, "estates": estates}
        assert (await admin.post("/console/api/users", json=body, headers=csrf(admin))).status_code == 201
    op = await _signed_in(console, "op-a", "Pass-word-2026")
    principal = (await op.get("/api/v1/whoami")).json()["principal"]
    assert principal == {
        "name": "op-a",
        "scopes": ["command", "read"],
        "estates": ["estate-A"],
        "source": "session",
    }
    viewer = await _signed_in(console, "viewer", "Pass-word-2026")
    assert (await viewer.get("/api/v1/whoami")).json()["principal"]["scopes"] == ["read"]
    # a bearer token is the API's business: the console does not install a principal for it
    bearer = await op.get("/api/v1/whoami", headers={"Authorization": "Bearer x"})
    assert bearer.json() == {"principal": None}
    # neither an operator nor a viewer manages accounts or reads the console's audit log
    for client in (op, viewer):
        assert (await client.get("/console/api/users")).status_code == 403
        assert (await client.get("/console/api/audit")).status_code == 403
    for client in (admin, op, viewer):
        await client.aclose()


async def test_an_estate_limited_admin_cannot_manage_accounts(console: Console) -> None:
    admin = await admin_client(console)
    body = {"username": "admin-a", "password": "Pass-word-2026", "role": "admin", "estates": ["estate-A"]}
    assert (await admin.post("/console/api/users", json=body, headers=csrf(admin))).status_code == 201
    limited = await _signed_in(console, "admin-a", "Pass-word-2026")
    session = (await limited.get("/console/api/session")).json()["user"]
    assert "users" not in session["permissions"] and "batch_audit" in session["permissions"]
    grab = {"estates": ["estate-A", "estate-B"]}
    refused = await limited.patch("/console/api/users/admin-a", json=grab, headers=csrf(limited))
    assert refused.status_code == 403
    await limited.aclose()
    await admin.aclose()


async def test_a_changed_grant_ends_the_sessions_and_the_last_full_admin_stays(console: Console) -> None:
    admin = await admin_client(console)
    body = {"username": "op", "password": "Pass-word-2026", "role": "operator"}
    assert (await admin.post("/console/api/users", json=body, headers=csrf(admin))).status_code == 201
    op = await _signed_in(console, "op", "Pass-word-2026")
    assert (await op.get("/api/v1/whoami")).json()["principal"]["estates"] is None
    limited = await admin.patch("/console/api/users/op", json={"estates": ["estate-B"]}, headers=csrf(admin))
    assert limited.status_code == 200 and limited.json()["user"]["estates"] == ["estate-B"]
    assert (await op.get("/api/v1/whoami")).json() == {"principal": None}
    op = await _signed_in(console, "op", "Pass-word-2026")
    assert (await op.get("/api/v1/whoami")).json()["principal"]["estates"] == ["estate-B"]
    lifted = await admin.patch("/console/api/users/op", json={"all_estates": True}, headers=csrf(admin))
    assert lifted.json()["user"]["estates"] is None
    for change in ({"role": "viewer"}, {"disabled": True}, {"estates": ["estate-A"]}):
        refused = await admin.patch("/console/api/users/root", json=change, headers=csrf(admin))
        assert refused.status_code == 409 and refused.json()["error"] == "last_admin", change
    assert (await admin.post("/console/api/users", json={**body, "username": "x", "role": "technician"},
                             headers=csrf(admin))).status_code == 422  # fmt: skip
    await op.aclose()
    await admin.aclose()


async def test_the_console_page_is_served_with_its_security_headers(console: Console) -> None:
    async with console.client() as client:
        root = await client.get("/")
        assert root.status_code == 307 and root.headers["location"] == "/console/"
        page = await client.get("/console/")
        assert page.status_code == 200 and "Gatehouse Central" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        script = await client.get("/console/static/js/app.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        api = await client.get("/console/api/session")
        assert api.headers["cache-control"] == "no-store"
