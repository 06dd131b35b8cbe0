"""A private, real Mosquitto broker for tests: TLS only, the project's own config and ACL.

Usage::

    from tests.broker import start_broker

    with start_broker(tmp_path) as broker:          # gateways gw-a, gw-b and the central user
        user, password = broker.credentials("gw-a")
        ctx = broker.ssl_context()                   # verifies the broker against the test CA
        ... connect to (broker.host, broker.port) ...
        broker.stop(); broker.start()                # outage on the same port

``start_broker`` makes a CA, the broker certificate and credentials for every gateway and for
``central`` (cloud_sync.certs), renders config/mosquitto/ with cloud_sync.broker_config on a free
port, starts ``mosquitto -c`` and waits until the port completes a TLS handshake. The process is
killed when the context exits (and at interpreter exit, should a test forget).
"""

from __future__ import annotations

import atexit
import datetime as dt
import socket
import ssl
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from cloud_sync.broker_config import AuthMode, BrokerFiles, write_broker_config
from cloud_sync.certs import (
    CENTRAL_USER,
    ClientCredentials,
    PkiLayout,
    create_ca,
    issue_client,
    issue_server,
)
from tests.support import free_port, wait_until_sync

__all__ = ["Broker", "start_broker"]

MOSQUITTO = "/usr/sbin/mosquitto"
_LIVE: set[Broker] = set()


@dataclass(eq=False)
class Broker:
    workdir: Path
    port: int
    layout: PkiLayout
    files: BrokerFiles
    clients: dict[str, ClientCredentials]
    auth: AuthMode
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    # -- what clients need -------------------------------------------------------------------
    @property
    def ca_path(self) -> Path:
        return self.layout.ca_cert

    @property
    def pki_dir(self) -> Path:
        return self.layout.root

    def credentials(self, user: str) -> tuple[str, str]:
        creds = self.clients[user]
        return creds.name, creds.password

    def client_cert(self, user: str) -> tuple[Path, Path]:
        """(certificate, key) paths for ``user`` (CN = user)."""
        creds = self.clients[user]
        return creds.cert_path, creds.key_path

    def ssl_context(self, user: str | None = None) -> ssl.SSLContext:
        """A client context trusting the test CA; with ``user``, also presenting its certificate."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_path))
        if user is not None:
            cert, key = self.client_cert(user)
            ctx.load_cert_chain(str(cert), str(key))
        return ctx

    def log_text(self) -> str:
        try:
            return self.files.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, timeout_s: float = 30.0) -> None:
        if self.running:
            return
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.files.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _LIVE.add(self)
        wait_until_sync(self._accepts_tls, timeout_s=timeout_s, message=f"mosquitto TLS on {self.port}")

    def _accepts_tls(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            stderr = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
            raise RuntimeError(
                f"mosquitto exited with {self.process.returncode}: {stderr}\n{self.log_text()}"
            )
        # Present central's certificate so the probe also passes when certificates are required.
        ctx = self.ssl_context(CENTRAL_USER)
        try:
            with (
                socket.create_connection((self.host, self.port), timeout=2.0) as raw,
                ctx.wrap_socket(raw, server_hostname=self.host),
            ):
                return True
        except OSError:
            return False

    def stop(self, *, timeout_s: float = 15.0) -> None:
        """Terminate the broker (SIGTERM; persistence is saved), waiting until it has exited."""
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout_s)
        if proc.stderr is not None:
            proc.stderr.close()
        self.process = None
        _LIVE.discard(self)

    def kill(self) -> None:
        """SIGKILL: an abrupt broker crash."""
        proc = self.process
        if proc is None:
            return
        proc.kill()
        proc.wait(timeout=15.0)
        if proc.stderr is not None:
            proc.stderr.close()
        self.process = None
        _LIVE.discard(self)

    def __enter__(self) -> Broker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def make_pki(
    pki_dir: Path, *, gateways: Iterable[str], broker_hosts: Iterable[str] = ()
) -> tuple[PkiLayout, dict[str, ClientCredentials]]:
    layout = PkiLayout(pki_dir)
    now = dt.datetime.now(dt.UTC)
    ca = create_ca(layout, now=now)
    issue_server(ca, layout, hostnames=list(broker_hosts), now=now)
    clients = {name: issue_client(ca, layout, name, now=now) for name in (*gateways, CENTRAL_USER)}
    return layout, clients


def start_broker(
    workdir: Path,
    *,
    gateways: Iterable[str] = ("gw-a", "gw-b"),
    auth: AuthMode = AuthMode.PASSWORD,
    port: int | None = None,
    start: bool = True,
    crl_file: Path | None = None,
) -> Broker:
    """Make a PKI and a broker config under ``workdir`` and start Mosquitto on a free port.

    ``crl_file``: the listener gets ``crlfile`` (the file must exist before ``start``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    layout, clients = make_pki(workdir / "pki", gateways=gateways)
    chosen_port = port if port is not None else free_port()
    files = write_broker_config(
        workdir / "broker", layout=layout, port=chosen_port, auth=auth, crl_file=crl_file
    )
    broker = Broker(workdir=workdir, port=chosen_port, layout=layout, files=files, clients=clients, auth=auth)
    if start:
        try:
            broker.start()
        except BaseException:
            broker.stop()
            raise
    return broker


@atexit.register
def _kill_leftovers() -> None:
    for broker in list(_LIVE):
        broker.kill()
