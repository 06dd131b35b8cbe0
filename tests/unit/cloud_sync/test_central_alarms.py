"""The alarm lifecycle central materialises at ingest (pure), and central config for estates and
PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from cloud_sync.central.config import CentralConfig
from cloud_sync.central.principal import Principal
from cloud_sync.central.storage.alarms import alarm_change
from cloud_sync.central.storage.common import missing_ranges, state_versions
from cloud_sync.central.storage.postgres_schema import (
    EVENTS,
    TELEMETRY,
    partition_bounds,
    partition_end,
    partition_name,
)
from cloud_sync.ports import EventRow


def event(kind: str, to: str, **extra: Any) -> EventRow:
    data: dict[str, Any] = {"to": to, "at": 10.0, "class": "fire", "priority": "critical", "by": "system"}
    data.update(extra)
    return EventRow(kind, "fire.z1", 9.0, data)


@pytest.mark.parametrize(
    ("kind", "to", "state", "cleared"),
    [
        ("alarm.raised", "unacknowledged", "active_unacked", False),
        ("alarm.acked", "acknowledged", "active_acked", False),
        ("alarm.returned", "returned_unacknowledged", "cleared_unacked", True),
        ("alarm.cleared", "normal", "closed", True),
        ("alarm.shelved", "shelved", "shelved", False),
        ("alarm.out_of_service", "out_of_service", "shelved", False),
        ("alarm.returned", "latched", "cleared_unacked", True),
    ],
)
def test_gateway_states_map_onto_the_console_states(kind: str, to: str, state: str, cleared: bool) -> None:
    change = alarm_change(event(kind, to, by="alice"))
    assert change is not None
    assert (change.state, change.cleared, change.at, change.key) == (state, cleared, 10.0, "fire.z1")
    assert change.acked_by == ("alice" if kind == "alarm.acked" else None)


def test_other_events_and_bad_data_change_no_alarm() -> None:
    assert alarm_change(EventRow("device.offline", "d1", 1.0, {"to": "normal"})) is None
    assert alarm_change(event("alarm.raised", "no-such-state")) is None
    change = alarm_change(
        EventRow("alarm.raised", "k", 5.0, {"to": "unacknowledged", "at": "soon", "message": 3})
    )
    assert change is not None
    assert (change.at, change.alarm_class, change.priority, change.message) == (5.0, "other", "unknown", "")


def test_message_prefers_english_then_chinese() -> None:
    en = alarm_change(event("alarm.raised", "unacknowledged", message={"zh": "火警", "en": "Fire"}))
    zh = alarm_change(event("alarm.raised", "unacknowledged", message={"zh": "火警", "en": ""}))
    assert en is not None and zh is not None and (en.message, zh.message) == ("Fire", "火警")


def test_state_versions_and_missing_ranges() -> None:
    assert state_versions({"version": "1.2", "config_version": 7, "site_name": "Tower", "x": 1}) == {
        "config_version": "7",
        "site_name": "Tower",
        "firmware_version": "1.2",
    }
    assert missing_ranges(2, [4, 5, 8], 10) == [(3, 3), (6, 7)]
    assert missing_ranges(0, [5, 7, 9], 1) == [(1, 4)]


def test_partitions_by_utc_day_and_month() -> None:
    ts = 1_767_225_600.0 + 86400 * 40 + 5  # 2026-02-10T00:00:05Z
    start, end, suffix = partition_bounds(TELEMETRY, ts)
    assert (end - start, suffix, partition_name(TELEMETRY, suffix)) == (
        86400.0,
        "20260210",
        "telemetry_p20260210",
    )
    assert partition_end(TELEMETRY, "telemetry_p20260210") == end
    start, end, suffix = partition_bounds(EVENTS, ts)
    assert (suffix, end - start) == ("202602", 28 * 86400.0)
    assert partition_end(EVENTS, "events_default") is None


def test_config_database_estates_and_token_estates() -> None:
    base: dict[str, Any] = {
        "signing_key": "k",
        "api": {"tokens": [{"name": "a", "token": "t", "estates": ["east"]}]},
        "gateways": [
            {"id": "gw-1", "keys": [{"pem": "x"}], "estate": "east", "name": "Tower 1"},
            {"id": "gw-2", "keys": [{"pem": "x"}]},
        ],
    }
    sqlite = CentralConfig.model_validate({**base, "database": "central.db"})
    assert not sqlite.postgres and (sqlite.estate_of("gw-1"), sqlite.estate_of("gw-2")) == ("east", "gw-2")
    pg = CentralConfig.model_validate({**base, "database": "postgresql://gatehouse@db:5432/gatehouse"})
    assert pg.postgres and pg.api.tokens[0].estates == ("east",)
    with pytest.raises(ValidationError, match="postgresql"):
        CentralConfig.model_validate({**base, "database": "mysql://db/x"})


def test_principal_sees_its_estates_only() -> None:
    limited = Principal("op", frozenset({"read"}), frozenset({"east"}), "session")
    everyone = Principal("admin", frozenset({"read", "admin"}), None, "token")
    assert limited.sees("east") and not limited.sees("west") and everyone.sees("west")
    assert limited.has("read") and not limited.has("admin")
