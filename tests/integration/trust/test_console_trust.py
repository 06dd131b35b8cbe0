"""The console's session on the trust routes (no browser): a full administrator issues tokens
and lists gateways; an operator, or an administrator limited to one estate, may not."""

from __future__ import annotations

import ssl

import httpx

from cloud_sync.central.console.context import SETUP_CODE_FILE
from cloud_sync.webauth.setup_code import read_setup_code

from .conftest import TrustCentral

XHR = {"X-Requested-With": "gatehouse"}


def browser(central: TrustCentral) -> httpx.AsyncClient:
    assert central.config.api.tls is not None
    verify = ssl.create_default_context(cafile=str(central.config.api.tls.cert_file))
    return httpx.AsyncClient(base_url=str(central.client.base_url), verify=verify, timeout=30.0)


def csrf(client: httpx.AsyncClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies["ghc_csrf"], **XHR}


async def test_only_a_full_administrator_session_manages_tokens(central: TrustCentral) -> None:
    code = read_setup_code(central.service.console.data_dir, file_name=SETUP_CODE_FILE)
    async with browser(central) as admin, browser(central) as operator, browser(central) as local_admin:
        setup = {"username": "root", "password": "Root-pass-2026", "code": code}
        assert (await admin.post("/console/api/setup", json=setup, headers=XHR)).status_code == 201
        for body in (
            {"username": "op", "password": "Opera-pass-2026", "role": "operator"},
            {"username": "la", "password": "Local-pass-2026", "role": "admin", "estates": ["estate-a"]},
        ):
            assert (await admin.post("/console/api/users", json=body, headers=csrf(admin))).status_code == 201
        for client, user, password in (
            (operator, "op", "Opera-pass-2026"),
            (local_admin, "la", "Local-pass-2026"),
        ):
            login = {"username": user, "password": password}
            assert (await client.post("/console/api/login", json=login, headers=XHR)).status_code == 200

        token = {"gateway_id": "gw-console", "estate": "estate-a"}
        made = await admin.post("/api/v1/enrollment-tokens", json=token, headers=csrf(admin))
        assert made.status_code == 201, made.text
        assert made.json()["gateway_id"] == "gw-console"
        # Without the CSRF header a session may not change anything.
        assert (await admin.post("/api/v1/enrollment-tokens", json=token, headers=XHR)).status_code in (
            401,
            403,
        )
        for client in (operator, local_admin):
            refused = await client.post("/api/v1/enrollment-tokens", json=token, headers=csrf(client))
            assert refused.status_code == 403
            assert (await client.get("/api/v1/trust/gateways")).status_code == 403
        listed = (await admin.get("/api/v1/enrollment-tokens")).json()
        assert [t["gateway_id"] for t in listed] == ["gw-console"]
        me = (await admin.get("/console/api/session")).json()["user"]
        assert "trust" in me["permissions"]
