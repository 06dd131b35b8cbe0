"""`make demo` for real: `python -m edge.demo` starts Mosquitto, the simulators, central and the
gateway as child processes; central's REST API must receive live values (and a simulated fire
alarm) from the gateway, and after the demo stops no child process may be left.

Every run uses `--ports auto` and its own `--data-dir`, so it never collides with a demo or a
test running next to it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from ruamel.yaml import YAML

from core.errors import ConfigError
from drivers.modbus.plugin import endpoint_of
from edge.demo import dashboard_available
from edge.identity.folder import write_enrolment
from edge.identity.material import new_keys
from edge.identity.protocol import parse_grant
from tests.support import wait_until_sync
from tests.unit.edge.identity.central import make_central

REPO = Path(__file__).resolve().parents[2]
DEMO_ESTATE = REPO / "config" / "examples" / "demo-estate.yaml"
READY = "Press Ctrl-C to stop everything."
# The whole estate (70 devices on eight bus types, four processes) on a loaded 2-core machine.
START_DEADLINE_S = 240.0

pytestmark = pytest.mark.slow

SMALL_SITE = """\
site: {id: demo-small, name: Small demo}
gateway: {id: gw-small, data_dir: ./data}
buses:
  - {id: room, type: modbus_tcp, host: 127.0.0.1, port: 15020}
devices:
  - {id: fire-panel, bus: room, unit: 1, profile: fire-panel-modbus}
  - {id: meter-1, bus: room, unit: 2, profile: eastron-sdm630, poll_interval_s: 1}
"""


@dataclass
class DemoRun:
    process: subprocess.Popen[bytes]
    data_dir: Path
    out_path: Path
    children: list[psutil.Process]

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"the demo exited with {self.process.returncode}:\n{self.output()}")
            return READY in self.output()

        wait_until_sync(ready, timeout_s=START_DEADLINE_S, interval_s=0.5, message="the demo's summary")
        self.children = psutil.Process(self.process.pid).children(recursive=True)

    def central(self) -> tuple[str, str]:
        """(base URL, token) of central's REST API, from the generated central.yaml."""
        config = YAML(typ="safe").load((self.data_dir / "central" / "central.yaml").read_text())
        token = (self.data_dir / "central" / "api-token").read_text().strip()
        return f"http://127.0.0.1:{config['api']['port']}", token

    def site(self) -> Any:
        return YAML(typ="safe").load((self.data_dir / "site.yaml").read_text())

    def wait_exit(self, timeout_s: float = 120.0) -> int:
        return self.process.wait(timeout=timeout_s)

    def assert_no_child_left(self) -> None:
        assert self.children, "the demo should have had child processes"
        left = [p for p in self.children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not left, f"processes left behind: {[(p.pid, p.cmdline()) for p in left]}"


def _start(data_dir: Path, *args: str) -> DemoRun:
    data_dir.mkdir(parents=True, exist_ok=True)
    out_path = data_dir.parent / f"{data_dir.name}.out"
    with out_path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "edge.demo", "--ports", "auto", "--data-dir", str(data_dir), *args],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return DemoRun(process, data_dir, out_path, [])


@pytest.fixture
def demo_runs() -> Iterator[list[DemoRun]]:
    runs: list[DemoRun] = []
    yield runs
    # Whatever happened in the test: nothing of a demo may outlive it.
    for run in runs:
        if run.process.poll() is None:
            run.process.send_signal(signal.SIGTERM)
            try:
                run.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                run.process.kill()
                run.process.wait(timeout=30)
        for child in run.children:
            if child.is_running():
                child.kill()


def _get(client: httpx.Client, url: str) -> Any:
    try:
        response = client.get(url)
    except httpx.HTTPError:
        return None
    return response.json() if response.is_success else None


def _live_points(client: httpx.Client, base: str, gateway: str) -> dict[str, float]:
    rows = _get(client, f"{base}/api/v1/points?gateway={gateway}&limit=100000") or []
    return {row["point_id"]: row["ts"] for row in rows}


def test_demo_estate_values_and_a_fire_alarm_reach_central_then_sigterm_stops_everything(
    tmp_path: Path, demo_runs: list[DemoRun]
) -> None:
    run = _start(tmp_path / "demo-data", "--site", str(DEMO_ESTATE))
    demo_runs.append(run)
    run.wait_ready()
    names = {" ".join(p.cmdline()) for p in run.children}
    for part in ("mosquitto", "edge simulate", "edge central", "edge run"):
        assert any(part in n for n in names), f"{part} is not running: {names}"

    base, token = run.central()
    site = run.site()
    gateway = site["gateway"]["id"]
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=10.0) as client:
        info = _get(client, f"{base}/api/v1/gateways/{gateway}")
        assert info is not None and info["online"] is True, info

        def most_points() -> dict[str, float] | None:
            # 654 points in the estate, each read on its device's first poll: most arrive in seconds.
            points = _live_points(client, base, gateway)
            return points if len(points) >= 300 else None

        first = wait_until_sync(most_points, timeout_s=120, interval_s=1.0, message="most points at central")

        # Live: values keep arriving, not only the first poll.
        def newer_values() -> bool:
            now = _live_points(client, base, gateway)
            return sum(1 for pid, ts in now.items() if ts > first.get(pid, 0.0)) >= 5

        wait_until_sync(newer_values, timeout_s=60, interval_s=1.0, message="newer values at central")

        # Every protocol of the estate delivers: one device per bus type, values stored at central.
        per_protocol = {
            "meter-pr-lighting": "modbus_rtu",
            "heat-meter-t3-east": "modbus_ascii",
            "meter-cp-chargers-a": "modbus_rtu_tcp",
            "fire-panel-cp": "gb26875",
            "wq-analyser-a": "serial_line",
            "smoke-fans-t3-roof": "bacnet_ip",
            "pump-station-opcua": "opcua",
        }

        def every_protocol() -> bool:
            devices = {pid.split("/")[1] for pid in _live_points(client, base, gateway)}
            return set(per_protocol) <= devices

        wait_until_sync(every_protocol, timeout_s=120, interval_s=1.0, message="values of every protocol")

        # A fire alarm injected at the simulated panel reaches central as an event.
        control = site["dashboard"]["simulator_api"] if "dashboard" in site else None
        if control is None:
            control = _control_url(run.output())
        injected = client.post(f"{control}/devices/fire-panel/scenarios/fire", json={"zone": 1})
        assert injected.is_success, injected.text

        def fire_event() -> bool:
            events = _get(client, f"{base}/api/v1/events?gateway={gateway}&kind=alarm.raised&limit=1000")
            return any("fire-panel/zone1_fire" in e["source"] for e in events or ())

        wait_until_sync(fire_event, timeout_s=60, interval_s=1.0, message="the fire alarm at central")

        # ... and one from the car park's panel over GB/T 26875.3 (its transmission device).
        injected = client.post(f"{control}/devices/fire-panel-cp/scenarios/fire", json={"zone": 1})
        assert injected.is_success, injected.text

        def gb26875_fire_event() -> bool:
            events = _get(client, f"{base}/api/v1/events?gateway={gateway}&kind=alarm.raised&limit=1000")
            return any("fire-panel-cp/cp_fire" in e["source"] for e in events or ())

        wait_until_sync(gb26875_fire_event, timeout_s=60, interval_s=1.0, message="the 26875 fire at central")

        # Enrolled with a token, batches encrypted to central; a command and a push came back done.
        enrolled = _get(client, f"{base}/api/v1/trust/gateways") or []
        assert [(g["id"], g["status"], g["encrypt"]) for g in enrolled] == [
            (gateway, "enrolled", "x25519-aes256gcm")
        ], enrolled
        wait_until_sync(
            lambda: "round trip: configuration push" in run.output(),
            timeout_s=240,
            interval_s=1.0,
            message="the configuration push's result",
        )
        trips = [line for line in run.output().splitlines() if line.startswith("round trip:")]
        assert len(trips) == 2 and all(" -> done in " in line for line in trips), trips

        if dashboard_available():
            session = _get(client, f"http://{site['dashboard']['listen']}/api/session")
            assert session is not None and session["setup_needed"] is True, session

    run.process.send_signal(signal.SIGTERM)
    assert run.wait_exit() == 0, run.output()
    run.assert_no_child_left()
    assert "demo stopped; every process has exited." in run.output()


def make_identity(folder: Path, *, gateway_id: str) -> None:
    """What `gatehouse enroll` would write, granted by an in-process CA (no central needed)."""
    keys = new_keys()
    central = make_central(folder.parent / "fake-central")
    grant = parse_grant(central.grant(keys, gateway_id=gateway_id), keys)
    write_enrolment(
        folder, grant, keys, central_url="https://central.example:8443", api_ca=None, now=time.time()
    )


def _control_url(output: str) -> str:
    for line in output.splitlines():
        if "control API http://" in line:
            return line.split("control API ", 1)[1].split()[0]
    raise AssertionError(f"no control API URL in the demo's output:\n{output}")


def test_small_site_stops_by_itself_and_a_second_run_reuses_the_credentials(
    tmp_path: Path, demo_runs: list[DemoRun]
) -> None:
    site_file = tmp_path / "small.yaml"
    site_file.write_text(SMALL_SITE)
    data_dir = tmp_path / "demo-data"
    ca_file = data_dir / "pki" / "ca.crt"

    for attempt in (1, 2):
        run = _start(data_dir, "--site", str(site_file), "--no-dashboard", "--duration", "30")
        demo_runs.append(run)
        run.wait_ready()
        if attempt == 1:
            assert "enrolled the gateway gw-small with a one-time token" in run.output()
            ca_bytes, identity = (
                ca_file.read_bytes(),
                (data_dir / "gateway/identity/identity.json").read_bytes(),
            )
        else:
            assert "the gateway gw-small is already enrolled; its identity is reused" in run.output()
        base, token = run.central()
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=10.0) as client:

            def meter_values(client: httpx.Client = client, base: str = base) -> bool:
                points = _live_points(client, base, "gw-small")
                return any(p.startswith("demo-small/meter-1/") for p in points)

            wait_until_sync(
                meter_values, timeout_s=25, interval_s=0.5, message="the meter's values at central"
            )
        started = time.monotonic()
        assert run.wait_exit() == 0, run.output()  # --duration: it stops by itself
        assert time.monotonic() - started < 90
        run.assert_no_child_left()

    # Same CA and identity, so central's enrolment and the broker's sessions stay valid.
    assert ca_file.read_bytes() == ca_bytes
    assert (data_dir / "gateway/identity/identity.json").read_bytes() == identity
    assert "credentials are reused" in run.output()
    # The original site file is never changed.
    assert site_file.read_text() == SMALL_SITE


def test_postgres_demo_runs_central_on_a_private_postgresql(tmp_path: Path, demo_runs: list[DemoRun]) -> None:
    """`make demo DEMO_ARGS=--postgres`: central's data in a PostgreSQL the demo starts itself."""
    site_file = tmp_path / "small.yaml"
    site_file.write_text(SMALL_SITE)
    data_dir = tmp_path / "demo-data"
    run = _start(data_dir, "--site", str(site_file), "--no-dashboard", "--postgres", "--duration", "30")
    demo_runs.append(run)
    run.wait_ready()
    database = (data_dir / "central" / "central.yaml").read_text()
    assert "database: postgresql://gatehouse@127.0.0.1:" in database
    assert ":5432/" not in database  # never the machine's own server
    base, token = run.central()
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=10.0) as client:
        wait_until_sync(
            lambda: any(p.startswith("demo-small/meter-1/") for p in _live_points(client, base, "gw-small")),
            timeout_s=25,
            interval_s=0.5,
            message="the meter's values at central, in PostgreSQL",
        )
    assert "first visit: create the platform admin with the setup code" in run.output()
    assert run.wait_exit() == 0, run.output()
    run.assert_no_child_left()
    assert not (data_dir / "central" / "central.db").exists()


def test_missing_mosquitto_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edge.demo", "--data-dir", str(tmp_path / "d"), "--duration", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GATEHOUSE_MOSQUITTO": str(tmp_path / "no-such-mosquitto")},
        check=False,
    )
    assert result.returncode == 2
    assert "GATEHOUSE_MOSQUITTO" in result.stdout
    assert "not an executable" in result.stdout


def test_no_mosquitto_anywhere_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge.demo import command as demo

    monkeypatch.delenv("GATEHOUSE_MOSQUITTO", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(demo, "MOSQUITTO_CANDIDATES", (str(tmp_path / "mosquitto"),))
    with pytest.raises(demo.DemoError, match="apt-get install mosquitto"):
        demo.find_mosquitto()


def test_a_port_in_use_is_reported_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        central_port = held.getsockname()[1]
        base = central_port - 1  # --ports BASE puts central's API at BASE + 1
        result = subprocess.run(
            [sys.executable, "-m", "edge.demo", "--ports", str(base), "--data-dir", str(tmp_path / "d")],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 2, result.stdout
    assert f"{central_port} (central's API)" in result.stdout
    assert not (tmp_path / "d" / "logs" / "broker.log").exists()  # nothing was started


# -- the generated files, without starting anything ---------------------------------------------

PROFILED_SITE = """\
site: {id: demo-files}
gateway: {id: gw-files, data_dir: ./data}
profile_dirs: [vendor]
buses:
  - {id: lan, type: modbus_tcp, host: 10.0.0.5, port: 502}
devices:
  - {id: meter-1, bus: lan, unit: 1, profile: eastron-sdm630}
  - {id: meter-2, bus: lan, unit: 2, profile: eastron-sdm630, host: 10.0.0.6}
"""


def test_generated_site_and_central_config_load_and_the_original_is_untouched(tmp_path: Path) -> None:
    from cloud_sync.central.config import load_central_config
    from cloud_sync.central.ingest import KeyRegistry
    from edge.config.loader import load_site
    from edge.demo.layout import DemoPaths, plan_ports
    from edge.demo.pki import ensure_credentials
    from edge.demo.site import read_source_site, write_central_yaml, write_derived_site

    (tmp_path / "site" / "vendor").mkdir(parents=True)
    original = tmp_path / "site" / "site.yaml"
    original.write_text(PROFILED_SITE)
    paths = DemoPaths(tmp_path / "demo")
    paths.make()
    source = read_source_site(original)
    ports = plan_ports("30000", source.tcp_endpoints())
    creds = ensure_credentials(paths.pki, source.gateway_id)
    write_derived_site(source, paths, ports, dashboard=True)
    write_central_yaml(paths, ports, creds, gateway_id="gw-files", token="t0ken")

    # Before `gatehouse enroll` has written the identity, the site names what is missing, where.
    with pytest.raises(ConfigError) as refused:
        load_site(paths.site)
    assert {p.path for p in refused.value.problems} == {"uplink.identity"}, refused.value.problems
    make_identity(paths.identity, gateway_id="gw-files")
    site = load_site(paths.site)  # uplink: and dashboard: validate, files exist
    assert site.data_dir == (paths.root / "gateway").resolve()
    assert {d.id: endpoint_of(d) for d in site.devices} == {
        "meter-1": ("127.0.0.1", 30010),
        "meter-2": ("127.0.0.1", 30011),
    }
    assert site.config.profile_dirs == [str((tmp_path / "site" / "vendor").resolve())]
    assert site.config.uplink is not None and site.config.uplink["broker_port"] == 30000
    assert site.config.dashboard is not None and site.config.dashboard["listen"] == "127.0.0.1:30002"
    assert original.read_text() == PROFILED_SITE

    central = load_central_config(paths.central_yaml)
    assert central.broker is not None and central.broker.port == 30000
    assert central.broker.resolved_password() == creds.central.password_file.read_text().strip()
    assert KeyRegistry.from_config(central.gateways).gateway_ids == []  # it enrols with a token
    assert central.trust is not None and central.trust.broker_port == 30000
    assert central.trust.broker_access is not None
    assert central.trust.broker_access.acl_file.resolve() == (paths.broker / "acl").resolve()
    assert central.e2e_key is not None and central.e2e_key.resolve() == creds.central_e2e_key.resolve()
    assert "t0ken" not in paths.central_yaml.read_text()  # only its SHA-256


def test_credentials_are_made_once_and_a_lost_password_entry_is_restored(tmp_path: Path) -> None:
    from cloud_sync.certs import check_password
    from edge.demo.pki import ensure_credentials

    first = ensure_credentials(tmp_path, "gw-x")
    assert "private CA" in first.created and "central end-to-end key" in first.created
    assert not (tmp_path / "clients" / "gw-x").exists()  # the gateway enrols; nothing is made for it
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    before = {p: p.read_bytes() for p in files}
    second = ensure_credentials(tmp_path, "gw-x")
    assert second.created == ()
    assert {p: p.read_bytes() for p in files} == before

    first.layout.password_file.unlink()
    third = ensure_credentials(tmp_path, "gw-x")
    assert third.created == ("broker password entry for central",)
    lines = first.layout.password_file.read_text().splitlines()
    password = third.central.password_file.read_text().strip()
    assert any(line.startswith("central:") and check_password(line, password) for line in lines)
