"""``gatehouse central --workers N --role all|api|ingest``: central as several processes.

N ingest processes share the gateways' topics through MQTT v5 shared subscriptions
(``$share/<group>/gh/v1/+/up/#``): the broker hands each message to one of them, and each
acknowledges (MQTT PUBACK, then the signed ack to the gateway) only after its transaction has
committed. Exactly-once is the database's job (the batches key, inside that transaction), so a
worker killed mid-batch loses nothing (the broker delivers the unacknowledged message again when
the worker's session comes back) and duplicates nothing (the key is already there, or not).

This module is a supervisor, not a cluster: it starts the workers, restarts one that dies (with
the same MQTT client id, so the broker resumes its session and redelivers its in-flight
messages), and stops them on SIGTERM. Several hosts scale the same way with a clustered broker
and a PostgreSQL of their own (docs/operations.md).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Final

import structlog

from cloud_sync.central.app import CentralService, Role
from cloud_sync.central.config import CentralConfig, CentralConfigError, load_central_config

__all__ = ["DEFAULT_SHARE_GROUP", "run_central", "worker_config"]

_LOG = structlog.get_logger(__name__)

DEFAULT_SHARE_GROUP: Final = "central"
_RESTART_BACKOFF_S: Final = 1.0
_STOP_GRACE_S: Final = 20.0


def worker_config(config: CentralConfig, index: int) -> CentralConfig:
    """Worker ``index``'s view of the configuration: its own client id, the shared group."""
    broker = config.broker
    if broker is None:
        raise CentralConfigError("--workers needs a broker: section (workers share its topics)")
    return config.model_copy(
        update={
            "broker": broker.model_copy(
                update={
                    "client_id": f"{broker.client_id}-w{index}",
                    "shared_group": broker.shared_group or DEFAULT_SHARE_GROUP,
                }
            )
        }
    )


def check_layout(config: CentralConfig, workers: int, role: Role) -> None:
    if workers < 1:
        raise CentralConfigError("--workers must be at least 1")
    split = workers > 1 or role != "all"
    if split and not config.postgres:
        # SQLite has one writer per file and keeps a counter in the process: one process only.
        raise CentralConfigError(
            "several central processes (--workers > 1 or --role api|ingest) need database: postgresql://..."
        )
    if role in ("ingest", "all") and workers > 1 and config.broker is None:
        raise CentralConfigError("--workers needs a broker: section (workers share its topics)")


async def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _supervise(config_path: Path, index: int, stop: asyncio.Event) -> None:
    """Keep worker ``index`` running until ``stop``; restart it when it dies."""
    while not stop.is_set():
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cloud_sync.central.workers",
            "--config",
            str(config_path),
            "--worker",
            str(index),
        )
        _LOG.info("central ingest worker started", worker=index, pid=proc.pid)
        started = time.monotonic()
        waiter = asyncio.create_task(proc.wait(), name=f"central-worker-{index}-wait")
        stopper = asyncio.create_task(stop.wait(), name=f"central-worker-{index}-stop")
        await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if waiter.done():
            _LOG.error("central ingest worker exited; restarting", worker=index, code=waiter.result())
            if time.monotonic() - started < _RESTART_BACKOFF_S:
                await asyncio.sleep(_RESTART_BACKOFF_S)
            continue
        proc.terminate()
        try:
            await asyncio.wait_for(waiter, _STOP_GRACE_S)
        except TimeoutError:
            proc.kill()
            await waiter
        _LOG.info("central ingest worker stopped", worker=index)


async def run_central(
    config_path: Path, config: CentralConfig, *, workers: int = 1, role: Role = "all"
) -> int:
    """Run central's processes until SIGTERM/SIGINT."""
    check_layout(config, workers, role)
    stop = await _stop_event()
    if workers == 1 and role == "all":
        async with CentralService(config) as service:
            _LOG.info("central ready", api_port=service.api_port, gateways=service.registry.gateway_ids)
            await stop.wait()
        return 0
    ingest = role in ("all", "ingest") and config.broker is not None
    async with asyncio.TaskGroup() as tg:
        if ingest:
            for index in range(workers):
                tg.create_task(_supervise(config_path, index, stop), name=f"central-worker-{index}")
        if role in ("all", "api"):
            async with CentralService(config, role="api") as service:
                _LOG.info(
                    "central API ready", api_port=service.api_port, ingest_workers=workers if ingest else 0
                )
                await stop.wait()
        else:
            await stop.wait()
    return 0


async def _worker_main(config: CentralConfig) -> int:
    stop = await _stop_event()
    async with CentralService(config, role="ingest"):
        await stop.wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    """One ingest worker (started by the supervisor above)."""
    parser = argparse.ArgumentParser(prog="python -m cloud_sync.central.workers")
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--worker", required=True, type=int)
    args = parser.parse_args(argv)
    # JSON lines on stderr, like the parent's (edge.logs is the gateway's; central stays apart).
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(20),
    )
    config = worker_config(load_central_config(args.config), args.worker)
    return asyncio.run(_worker_main(config))


if __name__ == "__main__":
    raise SystemExit(main())
