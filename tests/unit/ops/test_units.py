"""The systemd units: exposure ≤ 2.0 by `systemd-analyze security --offline=yes`, and the
gateway's sandbox actually runs the daemon where the machine has systemd as PID 1."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
UNITS = sorted((ROOT / "systemd").glob("*.service"))
MAX_EXPOSURE = 2.0


def _exposure(unit: Path) -> float:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: scripts/bootstrap.sh installs the systemd package"
    out = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out.stdout)
    assert found, out.stdout + out.stderr
    return float(found.group(1))


def test_every_service_unit_is_found() -> None:
    names = {u.name for u in UNITS}
    assert {"gatehouse.service", "gatehouse-central.service", "gatehouse-backup.service"} <= names


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_exposure_at_most_2(unit: Path) -> None:
    score = _exposure(unit)
    assert score <= MAX_EXPOSURE, f"{unit.name}: exposure {score} > {MAX_EXPOSURE}"


def test_gateway_unit_is_notify_with_watchdog_and_serial_devices() -> None:
    text = (ROOT / "systemd" / "gatehouse.service").read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "PrivateDevices=true",
        "DeviceAllow=char-ttyUSB rw",
        "DeviceAllow=char-ttyACM rw",
        "DeviceAllow=char-ttyS rw",
        "CapabilityBoundingSet=",
        "ProtectProc=invisible",
    ):
        assert any(ln.startswith(line) for ln in text.splitlines()), line


def _sandbox_properties(unit: Path) -> list[str]:
    """The [Service] sandbox lines of a unit as systemd-run -p arguments."""
    keep = (
        "PrivateDevices", "DeviceAllow", "DevicePolicy", "CapabilityBoundingSet", "NoNewPrivileges",
        "RestrictAddressFamilies", "ProtectSystem", "ProtectHome", "PrivateTmp", "ProtectHostname",
        "ProtectClock", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
        "ProtectControlGroups", "ProtectProc", "ProcSubset", "RestrictNamespaces", "RestrictRealtime",
        "RestrictSUIDSGID", "LockPersonality", "MemoryDenyWriteExecute", "SystemCallArchitectures",
        "SystemCallFilter", "SystemCallErrorNumber", "UMask",
    )  # fmt: skip
    out = []
    for line in unit.read_text().splitlines():
        key, sep, _ = line.partition("=")
        if sep and key in keep:
            out.append(f"--property={line}")
    return out


def _systemd_is_pid1() -> bool:
    # sd_booted(3): systemd is the init system iff this directory exists.
    return Path("/run/systemd/system").is_dir()


def test_daemon_runs_under_the_unit_sandbox(tmp_path: Path) -> None:
    """The whole sandbox through systemd-run where systemd is PID 1; otherwise the part that the
    kernel enforces by itself (MemoryDenyWriteExecute= is PR_SET_MDWE, Linux >= 6.3)."""
    if not _systemd_is_pid1():
        if _kernel_has_mdwe():
            _check_under_mdwe()
            return
        pytest.skip(
            "no systemd as PID 1 (/run/systemd/system missing) and no PR_SET_MDWE in this kernel:"
            " the sandbox cannot be applied here"
        )
    site = ROOT / "config" / "examples" / "demo-estate.yaml"
    venv = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv"))
    cmd = [
        "systemd-run", *([] if os.geteuid() == 0 else ["--user"]), "--wait", "--pipe", "--quiet", "--collect",
        *_sandbox_properties(ROOT / "systemd" / "gatehouse.service"),
        f"--property=ReadWritePaths={tmp_path}",
        f"--working-directory={ROOT}",
        str(venv / "bin" / "gatehouse"), "check", str(site),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


_MDWE_CHECK = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
    sys.exit(f"prctl(PR_SET_MDWE) failed: errno {ctypes.get_errno()}")
import cryptography.hazmat.primitives.asymmetric.ed25519, uvicorn, fastapi, zstandard, msgpack
import pymodbus.client, serial, prometheus_client, psutil, paho.mqtt.client
from edge.cli import main
sys.exit(main(["check", sys.argv[1]]))
"""


def _kernel_has_mdwe() -> bool:
    release = tuple(int(x) for x in re.findall(r"\d+", os.uname().release)[:2])
    return release >= (6, 3)


def _check_under_mdwe() -> None:
    """Every native module loads and `gatehouse check` runs with write+execute memory refused."""
    import sys

    site = ROOT / "config" / "examples" / "demo-estate.yaml"
    done = subprocess.run(
        [sys.executable, "-c", _MDWE_CHECK, str(site)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr
