"""Structured JSON logs for the daemon, the libraries' own logs included.

Everything goes to stderr as one JSON object per line (journald and log shippers take that
as it is). pymodbus, paho and uvicorn log through the standard library; they are routed
through the same structlog processors so that their lines are JSON too.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

__all__ = ["configure_logging", "logging_args"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

# Libraries that are chatty at INFO about things the gateway already reports in its own words.
_QUIET_LIBRARIES = ("pymodbus", "asyncio", "aiosqlite", "uvicorn.access", "asyncua", "bacpypes3")


# What the daemon chose, so its poll workers (edge.poll_workers) log the same way.
_chosen: list[str] = []


def logging_args() -> list[str]:
    """Command-line options that give a child process this process's logging."""
    return list(_chosen)


def configure_logging(level: str = "info", *, json: bool = True) -> None:
    _chosen[:] = ["--log-level", level, *([] if json else ["--console-logs"])]
    numeric = _LEVELS.get(level, logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
