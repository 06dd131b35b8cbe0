"""decode_telemetry_columns: the records as the columns they travel in, same checks and rows."""

from __future__ import annotations

import dataclasses

import pytest

from cloud_sync.envelope import (
    TelemetryColumns,
    decode_header,
    decode_records,
    decode_telemetry_columns,
)
from cloud_sync.errors import EnvelopeError
from cloud_sync.ports import EventRow, TelemetryRow
from tests.integration.central.conftest import make_gateway

ROWS = [
    TelemetryRow("gw-a/p1", 1.5, 0, "", 1_767_225_600.25, None),
    TelemetryRow("gw-a/p2", "on", 1, "comm", 1_767_225_600.5, 1_767_225_599.75),
    TelemetryRow("gw-a/p1", None, 2, "", 1_767_225_601.0, None),
    TelemetryRow("gw-a/p3", 2**60, 0, "", 1_767_225_599.0, 1_767_225_599.0),
]


def test_columns_hold_the_rows_decode_records_gives() -> None:
    gw = make_gateway("gw-a", 1)
    header = decode_header(gw.telemetry(4, ROWS))
    cols = decode_telemetry_columns(header)
    assert isinstance(cols, TelemetryColumns)
    assert list(cols) == decode_records(header) == ROWS
    assert [cols[i] for i in range(len(cols))] == ROWS
    assert cols.names == ["gw-a/p1", "gw-a/p2", "gw-a/p3"] and cols.p == [0, 1, 0, 2]


def test_an_empty_batch_and_an_event_batch() -> None:
    gw = make_gateway("gw-a", 1)
    assert list(decode_telemetry_columns(decode_header(gw.telemetry(1, [])))) == []
    event = gw.events(1, [EventRow(kind="k", source="s", ts=1.0, data={})])
    with pytest.raises(EnvelopeError):
        decode_telemetry_columns(decode_header(event))


def test_the_same_checks_as_decode_records() -> None:
    gw = make_gateway("gw-a", 1)
    header = decode_header(gw.telemetry(1, ROWS))
    broken = dataclasses.replace(header, record_count=3)  # the columns hold 4
    with pytest.raises(EnvelopeError, match="entries"):
        decode_records(broken)
    with pytest.raises(EnvelopeError, match="entries"):
        decode_telemetry_columns(broken)
