"""Run the real `gatehouse` daemon and simulator as subprocesses, and read its outbox."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
from ruamel.yaml import YAML

from tests.support import free_port, wait_until_sync

GATEHOUSE = [sys.executable, "-m", "edge"]


def write_site(path: Path, *, port: int, devices: list[dict[str, Any]], data_dir: Path) -> Path:
    site = {
        "site": {"id": "testsite"},
        "gateway": {"id": "gw-test", "data_dir": str(data_dir)},
        "outbox": {"commit_interval_ms": 20},
        "buses": [{"id": "lan", "type": "modbus_tcp", "host": "127.0.0.1", "port": port, "timeout_ms": 300}],
        "devices": devices,
    }
    yaml = YAML()
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(site, fh)
    return path


def meter(device_id: str, unit: int, interval_s: float = 0.2) -> dict[str, Any]:
    return {
        "id": device_id,
        "bus": "lan",
        "unit": unit,
        "profile": "eastron-sdm630",
        "poll_interval_s": interval_s,
    }


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def simulator(site: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*GATEHOUSE, "simulate", str(site), "--control-port", str(free_port())],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_sync(lambda: port_open(port) or proc.poll() is not None, message="simulator port")
        assert proc.poll() is None, log.read_text()
        yield proc
    finally:
        stop(proc)


def start_gateway(site: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [*GATEHOUSE, "run", "--config", str(site)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def connect_ro(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)


def telemetry(db: Path) -> list[tuple[int, str, float]]:
    """(row id, point id, receipt_ts) of every telemetry row committed so far."""
    if not db.exists():
        return []
    with contextlib.closing(connect_ro(db)) as conn:
        try:
            return conn.execute(
                "SELECT t.id, p.point_id, t.receipt_ts FROM telemetry t JOIN points p ON p.id = t.point"
                " ORDER BY t.id"
            ).fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []


def events(db: Path) -> list[tuple[str, str, dict[str, Any]]]:
    if not db.exists():
        return []
    with contextlib.closing(connect_ro(db)) as conn:
        try:
            rows = conn.execute("SELECT kind, source, data FROM events ORDER BY id").fetchall()
        except sqlite3.OperationalError:
            return []
    return [(kind, source, msgpack.unpackb(data)) for kind, source, data in rows]
