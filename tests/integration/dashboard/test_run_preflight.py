"""`gatehouse run` checks what can be busy or missing before anything starts (issue 18, item 7):
the dashboard port taken, a serial port that is not there, a missing certificate, a data folder
it cannot write. Each is one line that says what to do; no traceback; nothing started."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests.browser.daemon import copy_site

ROOT = Path(__file__).resolve().parents[3]


def run(site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "edge", "run", "--config", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_dashboard_port_taken_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    site, port = copy_site(tmp_path)
    with socket.create_server(("127.0.0.1", port)):
        result = run(site)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"dashboard port 127.0.0.1:{port} is already in use" in lines[0]
    assert "change dashboard.listen" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    # Nothing started: no rules store, no outbox in the data folder.
    data = site.parent / "data"
    assert not (data / "rules.db").exists() and not (data / "outbox.db").exists()


def test_missing_serial_port_and_unusable_data_folder_each_one_line(tmp_path: Path) -> None:
    site, _ = copy_site(tmp_path)
    text = site.read_text(encoding="utf-8")
    missing_tty = tmp_path / "ttyUSB-gone"
    text = text.replace("buses:\n", f"buses:\n  - {{id: rs485-1, type: modbus_rtu, port: {missing_tty}}}\n")
    # a data folder under a plain file cannot be made, whoever runs the test (root included)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    text = text.replace("data_dir: ./data", f"data_dir: {blocker / 'data'}")
    site.write_text(text, encoding="utf-8")
    result = run(site)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(lines) == 2, result.stderr
    assert "data folder" in lines[0] and "gateway.data_dir" in lines[0], lines
    assert f"serial port {missing_tty} of bus rs485-1 does not exist" in lines[1], lines
    assert "plug in the adapter" in lines[1]
