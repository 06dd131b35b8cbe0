"""Central's ``/healthz`` and ``/metrics`` (docs/operations.md, "Central: metrics and health").

``/healthz`` needs no token and says only what is wrong: JSON ``{"healthy", "problems":
[{"check", "detail"}], "checks"}``, 200 when nothing is, 503 otherwise. Checks:

- ``broker``: with a ``broker:`` configured, central is connected and subscribed;
- ``database``: a write transaction can be opened on the database (``BEGIN IMMEDIATE`` on a
  connection of its own, rolled back at once) within a deadline, and its disk has room left;
- ``queues``: neither MQTT ingest queue is full (by count or bytes) — a full queue means ingest
  cannot keep up and the broker is holding messages back.

``/metrics`` (Prometheus text) shows gateway ids and traffic, so it needs a bearer token from
``api.tokens`` with the ``metrics`` (or ``admin``) scope: 401 without a valid token, 403 when the
token lacks the scope. The registry is read in a thread: a scrape reads SQLite.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import shutil
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cloud_sync.central.metrics import build_registry, ingest_queues

if TYPE_CHECKING:
    from cloud_sync.central.service_view import ServiceView

__all__ = ["METRICS_SCOPES", "add_ops_routes", "database_writable", "health"]

_LOG = structlog.get_logger(__name__)

METRICS_SCOPES: Final = frozenset({"metrics", "admin"})
# A write lock not obtained in this time means ingest could not commit either.
DB_LOCK_WAIT_S = 5.0
_DB_CHECK_DEADLINE_S: Final = 10.0
# Less free space than this on the database's disk: the next commits may fail.
MIN_FREE_BYTES: Final = 64 * 1024 * 1024
# A queue this full (count or bytes) is reported: paho's thread is then blocked on it.
QUEUE_FULL_SHARE: Final = 0.9


def database_writable(path: Path, wait_s: float | None = None) -> str | None:
    """None when a write transaction opens on ``path`` within ``wait_s`` (``DB_LOCK_WAIT_S``)."""
    if not path.exists():
        return f"{path} does not exist"
    try:
        conn = sqlite3.connect(
            path, timeout=DB_LOCK_WAIT_S if wait_s is None else wait_s, isolation_level=None
        )
    except sqlite3.Error as exc:
        return f"cannot open {path}: {exc}"
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return f"no write transaction on {path}: {exc}"
    finally:
        conn.close()
    return None


async def health(service: ServiceView) -> dict[str, Any]:
    problems: list[dict[str, str]] = []
    checks: dict[str, Any] = {}

    broker = service.config.broker
    mqtt = service.mqtt
    connected = mqtt is not None and mqtt.subscribed.is_set()
    checks["broker"] = {"configured": broker is not None, "connected": connected}
    if broker is not None and not connected:
        problems.append(
            {"check": "broker", "detail": f"not connected and subscribed to {broker.host}:{broker.port}"}
        )

    path = getattr(service.store, "path", None)
    check: Any = getattr(service.store, "check_writable", None)
    try:
        async with asyncio.timeout(_DB_CHECK_DEADLINE_S):
            if isinstance(path, Path):
                error = await asyncio.to_thread(database_writable, path)
            else:  # PostgreSQL: a write transaction on a pooled connection
                error = await asyncio.to_thread(check)
    except TimeoutError:
        error = f"no answer from the database within {_DB_CHECK_DEADLINE_S:g} s"
    free: int | None = None
    if isinstance(path, Path):
        try:
            free = shutil.disk_usage(path.parent).free
        except OSError as exc:
            error = error or f"cannot read the disk of {path.parent}: {exc.strerror}"
    checks["database"] = {"writable": error is None, "free_bytes": free}
    if error is not None:
        problems.append({"check": "database", "detail": error})
    elif free is not None and free < MIN_FREE_BYTES:
        problems.append({"check": "database", "detail": f"only {free // (1024 * 1024)} MiB free on its disk"})

    queues: dict[str, Any] = {}
    for name, queue in sorted(ingest_queues(mqtt).items()):
        full = queue.qsize() >= queue.max_items * QUEUE_FULL_SHARE or (
            queue.nbytes >= queue.max_bytes * QUEUE_FULL_SHARE
        )
        queues[name] = {
            "items": queue.qsize(),
            "max_items": queue.max_items,
            "bytes": queue.nbytes,
            "max_bytes": queue.max_bytes,
            "full": full,
        }
        if full:
            problems.append(
                {
                    "check": "queues",
                    "detail": f"{name} ingest queue full: {queue.qsize()}/{queue.max_items} messages, "
                    f"{queue.nbytes}/{queue.max_bytes} bytes",
                }
            )
    checks["queues"] = queues
    return {"healthy": not problems, "problems": problems, "checks": checks}


def add_ops_routes(app: FastAPI, service: ServiceView) -> None:
    """``/healthz`` and ``/metrics`` on central's API server (outside ``/api/v1``)."""
    registry = build_registry(service)
    tokens = [(t.digest(), t) for t in service.config.api.tokens]

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        body = await health(service)
        if not body["healthy"]:
            _LOG.warning("central unhealthy", problems=body["problems"])
        return JSONResponse(
            body, status_code=200 if body["healthy"] else 503, headers={"Cache-Control": "no-store"}
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        offered = hashlib.sha256(credentials.strip().encode("utf-8")).hexdigest()
        # Every digest is compared, so the time taken does not say which one nearly matched.
        matches = [t for d, t in tokens if hmac.compare_digest(offered, d)]
        if scheme.lower() != "bearer" or not credentials.strip() or not matches:
            return JSONResponse(
                {"detail": "a valid bearer token is required"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not METRICS_SCOPES & set(matches[0].scopes):
            return JSONResponse({"detail": "this token lacks the 'metrics' scope"}, status_code=403)
        data = await asyncio.to_thread(generate_latest, registry)
        return Response(data, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
