"""The JSON shapes of the command routes (OpenAPI schemas, with examples)."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cloud_sync.central.commands.ledger import CommandRow
from cloud_sync.commands import ACTIONS

__all__ = ["CommandAccepted", "CommandIn", "CommandOut", "ConfigPushIn", "command_out"]

_TTL = Field(300, ge=1, le=86_400, description="seconds the command may wait before the gateway refuses it")


class CommandIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "action": "point.write",
                    "args": {"point": "tower-a/ahu1/fan_cmd", "value": True},
                    "ttl_s": 120,
                },
                {"action": "alarm.ack", "args": {"key": "fire.zone3", "comment": "on my way"}},
                {"action": "log.level", "args": {"level": "debug", "minutes": 30}},
            ]
        },
    )
    # Checked against the codec's list when the request arrives, so an action added there is
    # accepted here without a change.
    action: str = Field(json_schema_extra={"enum": list(ACTIONS)})
    args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("action")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ACTIONS:
            raise ValueError(f"unknown action; one of {', '.join(ACTIONS)}")
        return value

    ttl_s: int = _TTL


class ConfigPushIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "site:\n  id: tower-a\n...", "version": "2026-12-05.1", "health_s": 120}]
        },
    )
    text: str = Field(description="the whole site file (YAML), at most 1 MiB")
    version: str = Field(min_length=1, max_length=512)
    health_s: int = Field(120, ge=10, le=900, description="rolled back unless healthy within this")
    ttl_s: int = _TTL


class CommandAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"cid": "5f0c9a2e4b7d4f65a1c3e8d2b9f07a41", "gateway_id": "gw-tower-a", "cseq": 17,
                 "state": "pending", "not_after": 1767225900.0}
            ]
        }
    )  # fmt: skip
    cid: str
    gateway_id: str
    cseq: int
    state: str
    not_after: float


class CommandOut(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "cid": "5f0c9a2e4b7d4f65a1c3e8d2b9f07a41",
                    "gateway_id": "gw-tower-a",
                    "estate": "harbour-view",
                    "cseq": 17,
                    "action": "config.push",
                    "args": {"version": "2026-12-05.1", "health_s": 120, "text_bytes": 18234,
                             "text_sha256": "9b1c…"},
                    "by": "alice",
                    "from": "203.0.113.7",
                    "issued_at": 1767225600.0,
                    "not_after": 1767225900.0,
                    "state": "done",
                    "detail": "version 2026-12-05.1 running",
                    "value": None,
                    "reported_at": 1767225631.5,
                    "not_sent": None,
                    "config_version_before": "2026-11-20.3",
                    "config_version_now": "2026-12-05.1",
                }
            ]
        },
    )  # fmt: skip
    cid: str
    gateway_id: str
    estate: str
    cseq: int
    action: str
    args: dict[str, Any] = Field(description="as sent; a pushed site file as its size and SHA-256")
    by: str
    source: str = Field(alias="from", description="where the operator acted (IP address)")
    issued_at: float
    not_after: float
    state: str = Field(description="pending, done, refused, failed, expired or unsent")
    detail: str = Field(description="the gateway's reason or message, with its result")
    value: Any = None
    reported_at: float | None = Field(description="the gateway's clock when it reported the result")
    not_sent: str | None = Field(description="why the broker never took the command (state unsent)")
    config_version_before: str | None = Field(
        description="the config version the gateway reported when the command was issued"
    )
    config_version_now: str | None = Field(description="the config version the gateway reports now")


def _shown_args(row: CommandRow) -> dict[str, Any]:
    if row.action != "config.push":
        return row.args
    text = str(row.args.get("text", ""))
    data = text.encode()
    shown = {k: v for k, v in row.args.items() if k != "text"}
    return {**shown, "text_bytes": len(data), "text_sha256": hashlib.sha256(data).hexdigest()}


def command_out(row: CommandRow, *, estate: str, now: float, config_now: str | None) -> CommandOut:
    return CommandOut(
        cid=row.cid,
        gateway_id=row.gateway,
        estate=estate,
        cseq=row.cseq,
        action=row.action,
        args=_shown_args(row),
        by=row.by,
        source=row.source,
        issued_at=row.issued_at,
        not_after=row.not_after,
        state=row.state(now),
        detail=row.detail,
        value=row.value,
        reported_at=row.reported_at,
        not_sent=row.unsent,
        config_version_before=row.config_before,
        config_version_now=config_now,
    )
