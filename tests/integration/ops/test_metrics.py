"""`/metrics` and `/healthz` of the real daemon: Prometheus families, access control, health."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

from tests.integration.edge.daemon_support import GATEHOUSE, meter, simulator, stop, write_site
from tests.support import free_port, wait_until_sync


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_metrics_need_a_token_and_healthz_names_the_problem(tmp_path: Path) -> None:
    port, dash = free_port(), free_port()
    data = tmp_path / "data"
    site = write_site(
        tmp_path / "site.yaml", port=port, devices=[meter("m1", 1), meter("m9", 9)], data_dir=data
    )
    (tmp_path / "metrics.token").write_text("s3cret-token\n")
    yaml = YAML()
    doc = yaml.load(site.read_text())
    doc["dashboard"] = {
        "listen": f"127.0.0.1:{dash}",
        "metrics_token_file": "metrics.token",
        "metrics_allow": ["192.0.2.0/24"],  # not us: the token is needed
    }
    with site.open("w") as fh:
        yaml.dump(doc, fh)
    sim_site = write_site(tmp_path / "sim.yaml", port=port, devices=[meter("m1", 1)], data_dir=data)
    base = f"http://127.0.0.1:{dash}"
    with simulator(sim_site, port, tmp_path / "sim.log"), (tmp_path / "gw.log").open("wb") as out:
        gw = subprocess.Popen(
            [*GATEHOUSE, "run", "--config", str(site)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
        try:

            def scrape() -> dict[str, list[tuple[dict[str, str], float]]]:
                try:
                    status, body = _get(f"{base}/metrics", token="s3cret-token")
                except OSError:  # not listening yet
                    return {}
                if status != 200:
                    return {}
                return {
                    s.name: [(dict(x.labels), x.value) for x in fam.samples if x.name == s.name]
                    for fam in text_string_to_metric_families(body.decode())
                    for s in fam.samples
                }

            def m9_offline() -> dict[str, list[tuple[dict[str, str], float]]] | None:
                found = scrape()
                up = {labels["device"]: v for labels, v in found.get("gatehouse_device_up", [])}
                return found if up.get("m1") == 1.0 and up.get("m9") == 0.0 else None

            families = wait_until_sync(m9_offline, timeout_s=60, message="m1 up and m9 down in /metrics")
            polls = {(lb["device"], lb["result"]): v for lb, v in families["gatehouse_device_polls_total"]}
            assert polls[("m1", "ok")] >= 1 and polls[("m9", "failed")] >= 1
            assert {lb["bus"] for lb, _ in families["gatehouse_bus_polls_total"]} == {"lan"}
            assert {lb["lane"] for lb, _ in families["gatehouse_outbox_rows"]} == {"event", "telemetry"}
            assert "gatehouse_outbox_oldest_unacked_age_seconds" in families
            assert families["gatehouse_process_resident_memory_bytes"][0][1] > 1e6
            assert families["gatehouse_process_open_fds"][0][1] > 3
            assert "gatehouse_process_cpu_seconds_total" in families

            assert _get(f"{base}/metrics")[0] == 403
            assert _get(f"{base}/metrics", token="wrong")[0] == 403

            status, body = _get(f"{base}/healthz")
            health = json.loads(body)
            assert status == 200, health  # one of two devices answers: degraded, not unhealthy
            assert health["checks"]["devices"]["offline"] == ["m9"]
        finally:
            assert stop(gw) == 0


def test_healthz_is_503_when_no_device_answers(tmp_path: Path) -> None:
    dash = free_port()
    site = write_site(
        tmp_path / "site.yaml", port=free_port(), devices=[meter("m1", 1)], data_dir=tmp_path / "d"
    )
    yaml = YAML()
    doc = yaml.load(site.read_text())
    doc["dashboard"] = {"listen": f"127.0.0.1:{dash}"}
    with site.open("w") as fh:
        yaml.dump(doc, fh)
    with (tmp_path / "gw.log").open("wb") as out:
        gw = subprocess.Popen(
            [*GATEHOUSE, "run", "--config", str(site)], stdout=out, stderr=subprocess.STDOUT
        )
    try:

        def unhealthy() -> dict[str, object] | None:
            try:
                status, body = _get(f"http://127.0.0.1:{dash}/healthz")
            except OSError:
                return None
            result: dict[str, object] = json.loads(body)
            return result if status == 503 else None

        health = wait_until_sync(unhealthy, timeout_s=60, message="/healthz 503")
        assert health["problems"] == [{"check": "devices", "detail": "none of 1 devices answers"}]
        # loopback is allowed by default
        assert _get(f"http://127.0.0.1:{dash}/metrics")[0] == 200
    finally:
        assert stop(gw) == 0
