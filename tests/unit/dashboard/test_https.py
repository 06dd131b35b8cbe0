"""The LAN dashboard over HTTPS with a certificate from the site CA (issue 17, item 3)."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import httpx
import pytest

from cloud_sync.certs import PkiLayout, create_ca, issue_dashboard
from tests.unit.dashboard.conftest import ADMIN, XHR, setup_code, start


def _pki(tmp_path: Path) -> PkiLayout:
    layout = PkiLayout(tmp_path / "pki")
    ca = create_ca(layout, now=dt.datetime.now(dt.UTC), common_name="Test site CA")
    issue_dashboard(ca, layout, "gw-test", hostnames=["gw-test.estate.lan"], now=dt.datetime.now(dt.UTC))
    return layout


async def test_dashboard_serves_https_that_browsers_trusting_the_site_ca_accept(tmp_path: Path) -> None:
    layout = _pki(tmp_path)
    dashboard = {
        "listen": "127.0.0.1:0",
        "tls_cert": str(layout.dashboard_cert("gw-test").relative_to(tmp_path)),
        "tls_key": str(layout.dashboard_key("gw-test").relative_to(tmp_path)),
    }
    async for dash in start(tmp_path, dashboard):
        assert dash.server.url.startswith("https://127.0.0.1:")
        trust = ssl.create_default_context(cafile=str(layout.ca_cert))
        async with httpx.AsyncClient(base_url=dash.server.url, verify=trust, timeout=30.0) as client:
            code = setup_code(client, dash.gateway.site.data_dir)
            response = await client.post("/api/setup", json={**ADMIN, "code": code}, headers=XHR)
            assert response.status_code == 201, response.text
            cookies = response.headers.get_list("set-cookie")
            assert cookies and all("Secure" in c for c in cookies)  # never sent over plain HTTP
            assert (await client.get("/api/session")).json()["user"]["username"] == ADMIN["username"]
            # a browser that does not trust the site CA is refused the connection
            async with httpx.AsyncClient(base_url=dash.server.url, timeout=30.0) as untrusting:
                with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                    await untrusting.get("/api/session")
            # and plain HTTP on the HTTPS port gets nothing useful
            plain = dash.server.url.replace("https://", "http://")
            async with httpx.AsyncClient(base_url=plain, timeout=30.0) as http:
                with pytest.raises(httpx.HTTPError):
                    response = await http.get("/api/session")
                    response.raise_for_status()
