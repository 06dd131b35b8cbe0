"""A private, real PostgreSQL for the demo, the tests and the benches: Debian's server in a
temporary folder (``make demo DEMO_ARGS=--postgres``, ``tests/pg.py``, ``bench/central_*``).

Usage::

    from cloud_sync.central.storage.local_pg import start_postgres

    with start_postgres() as pg:           # initdb + pg_ctl start on a free port
        url = pg.create_database()         # a fresh, empty database per test: postgresql://...

Never the machine's own server on 5432: ``initdb`` makes a cluster in a folder of its own,
``pg_ctl`` starts it on a free port bound to 127.0.0.1 (trust authentication, nothing else can
reach it) and stops it when the context ends. PostgreSQL refuses to run as root, so as root the
cluster is made and run as the ``postgres`` system user (``runuser``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core import ports

__all__ = ["PG_BIN", "Postgres", "free_port", "start_postgres"]


def _pg_bin() -> Path:
    """Debian's newest installed server (``/usr/lib/postgresql/<major>/bin``)."""
    found = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return found[-1] if found else Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    return ports.free_port()


PG_BIN = _pg_bin()
_RUN_AS = "postgres"
_LIVE: set[Postgres] = set()


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", _RUN_AS, "--", *argv]


@dataclass(eq=False)
class Postgres:
    folder: Path
    port: int
    host: str = "127.0.0.1"
    user: str = "gatehouse"
    _databases: int = field(default=0, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = subprocess.run(
            [
                str(PG_BIN / "psql"),
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                self.url(database),
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout

    def create_database(self) -> str:
        """A new empty database on this server; returns its URL."""
        self._databases += 1
        name = f"t{os.getpid()}_{self._databases}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self not in _LIVE:
            return
        _LIVE.discard(self)
        subprocess.run(
            _as_server_user(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"]
            ),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def start_postgres(*, durable: bool = False) -> Iterator[Postgres]:
    """Start a private server; ``durable`` keeps fsync on (benches), tests run without it."""
    folder = Path(tempfile.mkdtemp(prefix="gatehouse-pg-"))
    server = Postgres(folder, free_port())
    if os.geteuid() == 0:
        entry = pwd.getpwnam(_RUN_AS)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    folder.chmod(0o700)
    subprocess.run(
        _as_server_user(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(server.data_dir),
                "-U",
                server.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = [
        f"-p {server.port}",
        "-c listen_addresses=127.0.0.1",
        f"-c unix_socket_directories={server.folder}",
        "-c max_connections=100",
        "-c shared_buffers=128MB",
        "-c max_wal_size=2GB",
    ]
    if not durable:
        options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    _LIVE.add(server)
    try:
        subprocess.run(
            _as_server_user(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(server.data_dir),
                    "-l",
                    str(server.folder / "server.log"),
                    "-o",
                    " ".join(options),
                    "-w",
                    "-t",
                    "120",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        yield server
    finally:
        server.stop()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop()
