"""An in-memory AlarmService and a gateway stand-in for the dashboard's own tests.

The real rules runtime (edge.rules_host.runtime) is tested on its own; these fakes implement just the
protocol of edge.alarm_api so the dashboard can be tested alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from core.model import ManualClock
from edge.alarm_api import AlarmUpdate
from edge.config.loader import load_site
from edge.config.site import Site
from edge.live import LiveState

_PRIORITY = {"critical": 0, "high": 1, "medium": 2, "low": 3}


class FakeAlarms:
    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.rows: dict[str, dict[str, Any]] = {}
        self.log: list[dict[str, Any]] = []
        self.linkage: list[dict[str, Any]] = []
        self._listeners: list[AlarmUpdate] = []
        self.flood_active = False

    # -- test helpers --------------------------------------------------------------------------

    def raise_alarm(
        self, key: str, *, klass: str = "fire", priority: str = "critical", zh: str = "火警", en: str = "Fire"
    ) -> dict[str, Any]:
        row = {
            "key": key,
            "state": "unacked",
            "unacked": True,
            "priority": priority,
            "class": klass,
            "message": {"zh": zh, "en": en},
            "point": key.rsplit("/", 1)[0],
            "zone": "Z1",
            "value": True,
            "raised_at": self.clock.wall(),
            "shelved_until": None,
        }
        self.rows[key] = row
        self._record(row, "raised", "system")
        return row

    def _record(self, row: dict[str, Any], transition: str, by: str, comment: str = "") -> None:
        self.log.insert(
            0,
            {
                "id": len(self.log) + 1,
                "ts": self.clock.wall(),
                "key": row["key"],
                "transition": transition,
                "by": by,
                "priority": row["priority"],
                "class": row["class"],
                "message": row["message"],
                "point": row["point"],
                "zone": row["zone"],
                "value": row["value"],
                "comment": comment,
            },
        )
        for listener in list(self._listeners):
            listener({"type": "alarm", "key": row["key"], "row": dict(row), "transition": transition})

    # -- AlarmService --------------------------------------------------------------------------

    def active_alarms(self) -> list[dict[str, Any]]:
        rows = [dict(r) for r in self.rows.values()]
        return sorted(rows, key=lambda r: (_PRIORITY[r["priority"]], -(r["raised_at"] or 0)))

    async def acknowledge(self, key: str, *, by: str, comment: str = "") -> bool:
        row = self.rows[key]
        if not row["unacked"]:
            return False
        row.update(state="acked", unacked=False)
        self._record(row, "acked", by, comment)
        return True

    async def shelve(self, key: str, *, by: str, until_wall: float, reason: str) -> bool:
        row = self.rows[key]
        row.update(state="shelved", shelved_until=until_wall)
        self._record(row, "shelved", by, reason)
        return True

    async def unshelve(self, key: str, *, by: str) -> bool:
        row = self.rows[key]
        row.update(state="acked" if not row["unacked"] else "unacked", shelved_until=None)
        self._record(row, "unshelved", by)
        return True

    async def reset(self, key: str, *, by: str) -> bool:
        row = self.rows.pop(key)
        self._record(row, "reset", by)
        return True

    async def comment(self, key: str, *, by: str, text: str) -> None:
        self._record(self.rows[key], "comment", by, text)

    async def confirm_linkage(self, rule_id: str, *, by: str) -> bool:
        entry = {"id": len(self.linkage) + 1, "ts": self.clock.wall(), "rule": rule_id, "step": 0,
                 "kind": "started", "point": None, "value": None, "detail": f"confirmed by {by}"}  # fmt: skip
        self.linkage.insert(0, entry)
        for listener in list(self._listeners):
            listener({"type": "linkage", "row": entry})
        return True

    async def cancel_linkage(self, rule_id: str, *, by: str) -> bool:
        return False

    def history(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        priority: str | None = None,
        klass: str | None = None,
        device: str | None = None,
        text: str | None = None,
        limit: int = 200,
        offset: int = 0,
        before: tuple[float, int] | None = None,
    ) -> list[dict[str, Any]]:
        rows = [
            r
            for r in self.log
            if (before is None or (r["ts"], r["id"]) < before)
            and (since is None or r["ts"] >= since)
            and (until is None or r["ts"] <= until)
            and (priority is None or r["priority"] == priority)
            and (klass is None or r["class"] == klass)
            and (device is None or r["key"].split("/")[1] == device)
            and (text is None or text in r["message"]["zh"] or text in r["message"]["en"])
        ]
        return rows[offset : offset + limit]

    def statistics(self, *, since: float, until: float) -> dict[str, Any]:
        return {"per_day": [], "top": [], "counters": {"raised": len(self.log)}}

    def linkage_log(self, *, device: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        return self.linkage[:limit]

    def linkage_rules(self) -> list[dict[str, Any]]:
        return [{"id": "r1", "name": {"zh": "联动", "en": "Linkage"}, "mode": "confirm", "state": "idle"}]

    def subscribe(self, listener: AlarmUpdate) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)


class FakeOutbox:
    async def backlog(self) -> dict[str, Any]:
        return {
            "lanes": {"telemetry": {"rows": 3, "batches": 0, "batch_bytes": 0, "oldest_ts": None}},
            "used_bytes": 4096,
            "quota_bytes": 1 << 30,
            "telemetry_refused": False,
        }


class FakeGateway:
    """What edge.dashboard reads of edge.app.Gateway: a real site, live state and clock."""

    def __init__(self, site: Site, clock: ManualClock) -> None:
        self.site = site
        self.clock = clock
        self.live = LiveState()
        self.alarms: Any = FakeAlarms(clock)
        self.outbox = FakeOutbox()
        self.uplink: Any = None
        self.devices: Any = None
        self.writes: list[tuple[str, str, Any]] = []
        self.writers: list[str | None] = []  # who wrote by hand (Gateway.write's by=)

    async def write(
        self, device_id: str, key: str, value: Any, *, verify: bool = True, by: str | None = None
    ) -> Any:
        self.writes.append((device_id, key, value))
        self.writers.append(by)
        return value


def write_site(
    tmp: Path, dashboard: dict[str, Any] | None = None, extra_devices: list[dict[str, Any]] | None = None
) -> Path:
    site: dict[str, Any] = {
        "site": {"id": "testsite", "name": "Test estate", "name_zh": "测试小区"},
        "gateway": {"id": "gw-test", "data_dir": str(tmp / "data")},
        "buses": [{"id": "lan", "type": "modbus_tcp", "host": "127.0.0.1", "port": 1502}],
        "devices": [
            {
                "id": "m1",
                "bus": "lan",
                "unit": 1,
                "profile": "eastron-sdm630",
                "building": "B1",
                "zone": "Z1",
            },
            *(extra_devices or []),
        ],
        "dashboard": dashboard or {"listen": "127.0.0.1:0"},
    }
    path = tmp / "site.yaml"
    with path.open("w", encoding="utf-8") as fh:
        YAML().dump(site, fh)
    return path


def make_gateway(
    tmp: Path, dashboard: dict[str, Any] | None = None, extra_devices: list[dict[str, Any]] | None = None
) -> FakeGateway:
    return FakeGateway(load_site(write_site(tmp, dashboard, extra_devices)), ManualClock())
