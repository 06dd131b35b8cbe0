"""The console's session on central's real API (HTTPS, the real store): an operator limited to
one estate sees only that estate's gateways, another estate's gateway answers 404, the batch
audit is the administrators', and a signed-out browser gets 401."""

from __future__ import annotations

import ssl

import httpx

from cloud_sync.central.console.context import SETUP_CODE_FILE
from cloud_sync.webauth.setup_code import read_setup_code
from tests.integration.central.conftest import RunningCentral

XHR = {"X-Requested-With": "gatehouse"}


def browser(central: RunningCentral) -> httpx.AsyncClient:
    """A client with no bearer token: only the console's cookie can open the API."""
    assert central.config.api.tls is not None
    verify = ssl.create_default_context(cafile=str(central.config.api.tls.cert_file))
    return httpx.AsyncClient(base_url=str(central.client.base_url), verify=verify, timeout=30.0)


async def test_an_estate_limited_session_sees_only_its_estate(central: RunningCentral) -> None:
    console = central.service.console
    code = read_setup_code(console.data_dir, file_name=SETUP_CODE_FILE)
    async with browser(central) as admin, browser(central) as operator, browser(central) as stranger:
        assert (await stranger.get("/api/v1/gateways")).status_code == 401
        setup = {"username": "root", "password": "Root-pass-2026", "code": code}
        assert (await admin.post("/console/api/setup", json=setup, headers=XHR)).status_code == 201
        # the fixture enrols gw-a in estate-a and gw-b in estate-b
        body = {"username": "op", "password": "Opera-pass-2026", "role": "operator", "estates": ["estate-a"]}
        headers = {"X-CSRF-Token": admin.cookies["ghc_csrf"], **XHR}
        assert (await admin.post("/console/api/users", json=body, headers=headers)).status_code == 201
        login = {"username": "op", "password": "Opera-pass-2026"}
        assert (await operator.post("/console/api/login", json=login, headers=XHR)).status_code == 200

        assert [g["gateway_id"] for g in (await admin.get("/api/v1/gateways")).json()] == ["gw-a", "gw-b"]
        assert [g["gateway_id"] for g in (await operator.get("/api/v1/gateways")).json()] == ["gw-a"]
        assert (await operator.get("/api/v1/gateways/gw-b")).status_code == 404
        assert (await operator.get("/api/v1/gateways/gw-a")).status_code == 200
        assert (await admin.get("/api/v1/audit/rejected")).status_code == 200
        assert (await operator.get("/api/v1/audit/rejected")).status_code == 403
        # the console's own page and API work beside the bearer-token API
        assert (await operator.get("/console/")).status_code == 200
        me = (await operator.get("/console/api/session")).json()["user"]
        assert me["estates"] == ["estate-a"] and me["role"] == "operator"
        await operator.post("/console/api/logout", headers={"X-CSRF-Token": operator.cookies["ghc_csrf"]})
        assert (await operator.get("/api/v1/gateways")).status_code == 401
