"""`gatehouse central --config central.yaml`: the thin central service (cloud_sync.central).

``signing_key`` (central's Ed25519 key, ``gatehouse certs central``) must load: ``--check``
reports its key id, which gateways pin. SIGTERM/SIGINT stop it cleanly: the API stops
accepting, the MQTT session is closed (batches published meanwhile wait at the broker in
central's persistent session), the database is closed.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import structlog

_LOG = structlog.get_logger("gatehouse.central")


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "central", help="run the central service: MQTT/HTTPS ingest, storage, REST API"
    )
    parser.add_argument("--config", "-c", required=True, type=Path, help="central.yaml")
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    parser.add_argument("--console-logs", action="store_true", help="human-readable logs, not JSON")
    parser.add_argument(
        "--workers", type=int, default=1, help="MQTT ingest processes sharing the topics (PostgreSQL only)"
    )
    parser.add_argument(
        "--role", choices=("all", "api", "ingest"), default="all", help="run the API, the ingest, or both"
    )
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from cloud_sync.central.config import CentralConfigError, load_central_config
    from cloud_sync.central.ingest import KeyRegistry
    from cloud_sync.errors import KeyFileError
    from cloud_sync.keys import key_id, load_private_key, load_x25519_private
    from edge.logs import configure_logging

    try:
        config = load_central_config(args.config)
        registry = KeyRegistry.from_config(config.gateways)
        signing_kid = key_id(load_private_key(config.signing_key).public_key())
        if config.e2e_key is not None:
            load_x25519_private(config.e2e_key)  # a bad key fails here, not when central starts
    except (CentralConfigError, KeyFileError) as exc:
        print(exc, file=sys.stderr)
        print("gatehouse central: the configuration has problems", file=sys.stderr)
        return 2
    if args.check:
        print(
            f"{args.config}: ok, {len(registry.gateway_ids)} gateway(s) enrolled,"
            f" acks signed with key {signing_kid}"
        )
        return 0
    configure_logging(args.log_level, json=not args.console_logs)
    from cloud_sync.errors import SyncError

    try:
        if args.workers != 1 or args.role != "all":
            from cloud_sync.central.workers import check_layout, run_central

            check_layout(config, args.workers, args.role)
            return asyncio.run(run_central(args.config, config, workers=args.workers, role=args.role))
        return asyncio.run(_main(config))
    except SyncError as exc:
        print(f"gatehouse central: {exc}", file=sys.stderr)
        return 1


async def _main(config: Any) -> int:
    from cloud_sync.central.app import CentralService

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with CentralService(config) as service:
        _LOG.info("central ready", api_port=service.api_port, gateways=service.registry.gateway_ids)
        await stop.wait()
        _LOG.info("central stopping")
    return 0
