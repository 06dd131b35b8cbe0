"""`gatehouse run --config SITE.yaml`: the gateway daemon.

SIGTERM/SIGINT stop it cleanly (the outbox is flushed first); SIGHUP reloads the site file,
but only if it validates: otherwise the running configuration stays and the errors are logged.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import structlog

from edge.errors import ConfigError

_LOG = structlog.get_logger("gatehouse.run")


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("run", help="run the gateway daemon")
    parser.add_argument("--config", "-c", required=True, type=Path, help="the site file (YAML)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default=None)
    parser.add_argument("--console-logs", action="store_true", help="human-readable logs, not JSON")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from edge.config.loader import load_site
    from edge.logs import configure_logging

    try:
        site = load_site(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"gatehouse run: {len(exc.problems)} problem(s) in the configuration", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"gatehouse run: cannot read {args.config}: {exc.strerror}", file=sys.stderr)
        return 2
    configure_logging(args.log_level or site.config.gateway.log_level, json=not args.console_logs)
    return asyncio.run(_main(site, args.config))


async def _main(site: Any, path: Path) -> int:
    from edge.app import Gateway
    from edge.config.loader import load_site

    loop = asyncio.get_running_loop()
    async with Gateway(site) as gateway:

        def on_hup() -> None:
            async def reload() -> None:
                try:
                    new_site = await asyncio.to_thread(load_site, path)
                except ConfigError as exc:
                    _LOG.error(
                        "reload refused: the new configuration is invalid; keeping the running one",
                        problems=[str(p) for p in exc.problems],
                    )
                    return
                except OSError as exc:
                    _LOG.error("reload refused: cannot read the site file", error=str(exc))
                    return
                gateway.reload(new_site)

            task = loop.create_task(reload(), name="reload")
            _reloads.add(task)
            task.add_done_callback(_reloads.discard)

        loop.add_signal_handler(signal.SIGTERM, gateway.stop)
        loop.add_signal_handler(signal.SIGINT, gateway.stop)
        loop.add_signal_handler(signal.SIGHUP, on_hup)
        _LOG.info("gateway started", site=site.id, devices=len(site.devices), outbox=str(site.outbox_path))
        await gateway.run()
    _LOG.info("gateway stopped; outbox flushed")
    return 0


_reloads: set[asyncio.Task[None]] = set()
