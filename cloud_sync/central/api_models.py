"""The JSON shapes of central's REST API (OpenAPI schemas, with examples)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "AlarmOut",
    "AlarmStats",
    "Audit",
    "EstateInfo",
    "EventOut",
    "FleetEntry",
    "GatewayInfo",
    "History",
    "HistoryBucket",
    "HistorySample",
    "LanePosition",
    "PointValue",
    "RejectedOut",
    "StatsBucket",
]


def _example(example: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [example]})


class LanePosition(BaseModel):
    acked: int
    highest: int
    missing: list[tuple[int, int]]
    reported: int | None


class GatewayInfo(BaseModel):
    model_config = _example(
        {
            "gateway_id": "gw-tower-a",
            "enrolled": True,
            "online": True,
            "state": "online",
            "first_seen": 1767225000.0,
            "last_seen": 1767225600.0,
            "state_ts": 1767225590.0,
            "backlog": {},
            "lanes": {"telemetry": {"acked": 4711, "highest": 4711, "missing": [], "reported": 4711}},
            "estate": "harbour-view",
            "name": "Tower A",
        }
    )
    gateway_id: str
    enrolled: bool
    online: bool
    state: str
    first_seen: float | None  # None: enrolled but never heard from
    last_seen: float | None
    state_ts: float | None
    backlog: dict[str, Any]
    lanes: dict[str, LanePosition]
    estate: str
    name: str | None = None


class FleetEntry(BaseModel):
    model_config = _example(
        {
            "gateway_id": "gw-tower-a",
            "estate": "harbour-view",
            "name": "Tower A",
            "online": True,
            "last_seen": 1767225600.0,
            "last_batch_at": 1767225599.5,
            "backlog": {"telemetry": {"rows": 120, "batches": 3, "batch_bytes": 40213}},
            "oldest_unacked_age_s": 12.5,
            "firmware_version": "1.4.0",
            "config_version": "c-2026-11-30",
            "active_alarms": {"fire": 1},
        }
    )
    gateway_id: str
    estate: str
    name: str | None
    online: bool
    last_seen: float | None
    last_batch_at: float | None
    backlog: dict[str, dict[str, Any]]
    oldest_unacked_age_s: float | None
    firmware_version: str | None
    config_version: str | None
    active_alarms: dict[str, int]


class EstateInfo(BaseModel):
    model_config = _example(
        {"estate": "harbour-view", "gateways": 3, "online": 2, "offline": 1, "active_alarms": {"fire": 1}}
    )
    estate: str
    gateways: int
    online: int
    offline: int
    active_alarms: dict[str, int]


class PointValue(BaseModel):
    model_config = _example(
        {
            "point_id": "estate1/meter1/p_total",
            "gateway_id": "gw-tower-a",
            "ts": 1767225600.0,
            "source_ts": None,
            "value": 1520.5,
            "quality": 0,
            "reason": "",
            "estate": "harbour-view",
        }
    )
    point_id: str
    gateway_id: str
    ts: float
    source_ts: float | None
    value: bool | int | float | str | None
    quality: int
    reason: str
    estate: str | None = None


class HistorySample(BaseModel):
    ts: float
    source_ts: float | None
    value: bool | int | float | str | None
    quality: int
    reason: str
    historical: bool


class HistoryBucket(BaseModel):
    ts: float  # bucket start
    count: int  # records in the bucket, any quality
    avg: float | None  # over good numeric values
    min: float | None
    max: float | None
    last: bool | int | float | str | None  # the newest value in the bucket, any quality


class History(BaseModel):
    point_id: str
    start: float
    end: float
    step_s: float | None
    samples: list[HistorySample] | None = None
    buckets: list[HistoryBucket] | None = None
    truncated: bool = False


class EventOut(BaseModel):
    gateway_id: str
    seq: int
    kind: str
    source: str
    ts: float
    data: dict[str, Any]
    historical: bool


class RejectedOut(BaseModel):
    received_at: float
    transport: str
    gateway_id: str
    lane: str
    seq: int | None
    reason: str
    detail: str
    size: int
    digest: str


class Audit(BaseModel):
    counts: dict[str, int]
    items: list[RejectedOut]


class AlarmOut(BaseModel):
    model_config = _example(
        {
            "id": 42,
            "gateway_id": "gw-tower-a",
            "estate": "harbour-view",
            "alarm_key": "fire.zone3",
            "point_id": "tower-a/fap/zone3",
            "alarm_class": "fire",
            "priority": "critical",
            "state": "active_unacked",
            "message": "Fire alarm zone 3",
            "raised_at": 1767225600.0,
            "acked_at": None,
            "acked_by": None,
            "cleared_at": None,
            "updated_at": 1767225600.0,
        }
    )
    id: int
    gateway_id: str
    estate: str
    alarm_key: str
    point_id: str | None
    alarm_class: str
    priority: str
    state: str
    message: str
    raised_at: float
    acked_at: float | None
    acked_by: str | None
    cleared_at: float | None
    updated_at: float


class StatsBucket(BaseModel):
    key: str
    count: int


class AlarmStats(BaseModel):
    model_config = _example({"by": "class", "buckets": [{"key": "fire", "count": 3}]})
    by: str
    buckets: list[StatsBucket]
