"""How long the gateway keeps each class of record (R3.5), from the site file's ``retention:``.

Example::

    retention:
      alarms_days: 365            # alarm history and linkage log (rules.db); at least 180
      passages_days: 180          # vehicle passage records: trends of passage devices; at least 180
      passage_profiles: [vehicle-barrier]

Telemetry is kept by quota, not by age: the outbox holds what central has not acknowledged, up
to ``outbox.quota_bytes`` (oldest telemetry evicted first, events never), and the dashboard's
trends ``dashboard.history_days``. A device deleted on the dashboard keeps its history for
``dashboard.deleted_history_days``. The dashboard's audit log has ``dashboard.audit_days``.

The section is kept raw by the site model and validated here (:func:`check_retention`), like
``zones:`` by ``edge.site_zones``. :class:`RetentionSweeper` runs in the daemon and purges once
an hour; :func:`retention_report` is what ``gatehouse buffer stats`` shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.config.checks import Issue, issues_from_validation
from edge.deleted_devices import deleted_devices

__all__ = [
    "RetentionPolicy",
    "RetentionSweeper",
    "check_retention",
    "enter_retention",
    "policy_of",
    "retention_report",
]

_LOG = structlog.get_logger(__name__)
_LOC = ("retention",)
MIN_DAYS = 180.0  # R3.5
_SWEEP_EVERY_S = 3600.0
_DAY_S = 86400.0


class RetentionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    alarms_days: float = Field(default=365.0, ge=MIN_DAYS, le=3660)
    passages_days: float = Field(default=MIN_DAYS, ge=MIN_DAYS, le=3660)
    passage_profiles: list[str] = Field(default_factory=lambda: ["vehicle-barrier"])


def check_retention(raw: Any) -> list[Issue]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return [Issue(_LOC, "expected a mapping of 'key: value' entries")]
    try:
        RetentionPolicy.model_validate(raw)
    except ValidationError as exc:
        return issues_from_validation(exc, raw, RetentionPolicy, prefix=_LOC)
    return []


def policy_of(site: Any) -> RetentionPolicy:
    raw = getattr(site.config, "retention", None) or {}
    return RetentionPolicy.model_validate(raw)


def _dashboard(site: Any) -> dict[str, Any]:
    raw = site.config.dashboard or {}
    db = Path(site.data_dir) / str(raw.get("db", "dashboard.db"))
    return {
        "db": db,
        # the trend history has its own file (edge.dashboard.history.trends_path)
        "trends": db.with_name(f"{db.stem}-trends{db.suffix or '.db'}"),
        "history_days": float(raw.get("history_days", 7.0)),
        "deleted_history_days": float(raw.get("deleted_history_days", 180.0)),
        "audit_days": float(raw.get("audit_days", 365.0)),
    }


def passage_prefixes(site: Any, policy: RetentionPolicy) -> tuple[str, ...]:
    return tuple(
        site.point_id(d.id, "") for d in site.devices if d.config.profile in set(policy.passage_profiles)
    )


def _deleted(site: Any) -> dict[str, float]:
    return deleted_devices(Path(site.data_dir))


def sweep(site: Any, now: float) -> dict[str, int]:
    """Delete what is past its class's age; returns rows deleted per class."""
    policy = policy_of(site)
    dash = _dashboard(site)
    out: dict[str, int] = {}
    rules_db = Path(site.data_dir) / "rules.db"
    if rules_db.exists():
        with contextlib.closing(sqlite3.connect(rules_db, timeout=30)) as conn:
            cutoff = now - policy.alarms_days * _DAY_S
            n = conn.execute("DELETE FROM alarm_history WHERE ts < ?", (cutoff,)).rowcount
            n += conn.execute("DELETE FROM linkage_log WHERE ts < ?", (cutoff,)).rowcount
            conn.commit()
            out["alarms"] = n
    for trend_db in (dash["trends"], dash["db"]):  # dashboard.db: an older release's trends
        if not trend_db.exists():
            continue
        with contextlib.closing(sqlite3.connect(trend_db, timeout=30)) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "trend" in tables:
                n = 0
                cutoff = now - policy.passages_days * _DAY_S
                for prefix in passage_prefixes(site, policy):
                    n += conn.execute(
                        "DELETE FROM trend WHERE point >= ? AND point < ? AND bucket < ?",
                        (prefix, prefix + "\uffff", cutoff),
                    ).rowcount
                out["passages"] = out.get("passages", 0) + n
                n = 0
                for device, deleted_at in _deleted(site).items():
                    if now - deleted_at >= dash["deleted_history_days"] * _DAY_S:
                        prefix = site.point_id(device, "")
                        n += conn.execute(
                            "DELETE FROM trend WHERE point >= ? AND point < ?", (prefix, prefix + "\uffff")
                        ).rowcount
                out["deleted_devices"] = out.get("deleted_devices", 0) + n
            conn.commit()
    return out


def _span(db: Path, sql: str) -> dict[str, Any]:
    if not db.exists():
        return {"rows": 0, "oldest_ts": None}
    try:
        with contextlib.closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            rows, oldest = conn.execute(sql).fetchone()
    except sqlite3.Error:
        return {"rows": None, "oldest_ts": None}
    return {"rows": int(rows), "oldest_ts": oldest}


def retention_report(site: Any) -> dict[str, Any]:
    """Per data class: where it is, how long it is kept, what is there now (read-only)."""
    policy = policy_of(site)
    dash = _dashboard(site)
    rules_db = Path(site.data_dir) / "rules.db"
    prefixes = passage_prefixes(site, policy)
    trends = dash["trends"] if dash["trends"].exists() else dash["db"]
    passages = " OR ".join(f"point LIKE '{p.replace(chr(39), '')}%'" for p in prefixes) or "0"
    return {
        "alarms": {
            "keep_days": policy.alarms_days,
            "store": str(rules_db),
            **_span(rules_db, "SELECT count(*), min(ts) FROM alarm_history"),
        },
        "passages": {
            "keep_days": policy.passages_days,
            "store": str(dash["trends"]),
            "devices": len(prefixes),
            **_span(trends, f"SELECT count(*), min(bucket) FROM trend WHERE {passages}"),  # noqa: S608
        },
        "telemetry": {
            "keep": "outbox quota; dashboard trends by history_days",
            "quota_bytes": site.config.outbox.quota_bytes,
            "trend_days": dash["history_days"],
        },
        "deleted_devices": {"keep_days": dash["deleted_history_days"], "devices": sorted(_deleted(site))},
        "audit": {"keep_days": dash["audit_days"]},
    }


class RetentionSweeper:
    def __init__(self, gateway: Any) -> None:
        self._gateway = gateway

    async def run(self) -> None:
        while True:
            try:
                deleted = await asyncio.to_thread(sweep, self._gateway.site, time.time())
            except sqlite3.Error as exc:
                _LOG.warning("retention sweep failed; retrying in an hour", error=str(exc))
            else:
                if any(deleted.values()):
                    _LOG.info("retention sweep", **deleted)
            await asyncio.sleep(_SWEEP_EVERY_S)


async def enter_retention(stack: AsyncExitStack, gateway: Any) -> asyncio.Task[None]:
    """Start the hourly sweep; it stops when ``stack`` closes."""
    dashboard = gateway.dashboard
    ctx = getattr(dashboard, "ctx", None)
    if ctx is not None:
        # The trend store purges at history_days; passage devices' trends are kept for their class.
        ctx.trends.retain_prefixes = passage_prefixes(gateway.site, policy_of(gateway.site))
    task = asyncio.create_task(RetentionSweeper(gateway).run(), name="retention")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)
    return task
