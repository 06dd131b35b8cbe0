"""The per-value path of subscribed data: a publish response's notifications reach the link in
one call, and the plain-float fast path of ``Converter`` gives what the general path gives."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any, cast

import pytest
from asyncua import ua
from asyncua.client.ua_session import UaSession

from core.model import Quality, Reason
from drivers.opcua.codec import Converter
from drivers.opcua.config import OpcUaPointConfig
from drivers.opcua.subscription import BulkSubscription

_BAD_TIMEOUT = 0x800A0000


def _notification(handle: int, value: float) -> ua.MonitoredItemNotification:
    now: Any = dt.datetime.now(dt.UTC)  # asyncua types it as its DateTime alias
    return ua.MonitoredItemNotification(
        ClientHandle=handle,
        Value=ua.DataValue(ua.Variant(value, ua.VariantType.Double), SourceTimestamp=now),
    )


async def test_publish_result_goes_to_the_handlers_as_decoded() -> None:
    batches: list[list[int]] = []
    statuses: list[ua.StatusCode] = []

    def on_changes(notifications: Sequence[ua.MonitoredItemNotification]) -> None:
        batches.append([n.ClientHandle for n in notifications])

    sub = BulkSubscription(
        cast(UaSession, object()), ua.CreateSubscriptionParameters(), on_changes, statuses.append
    )
    result = ua.PublishResult()
    result.NotificationMessage.SequenceNumber = 7
    changes = ua.DataChangeNotification()
    changes.MonitoredItems = [_notification(h, float(h)) for h in (3, 1, 2)]
    status = ua.StatusChangeNotification()
    status.Status = ua.StatusCode(ua.UInt32(_BAD_TIMEOUT))
    result.NotificationMessage.NotificationData = [changes, status]
    await sub.publish_callback(result)
    assert batches == [[3, 1, 2]]
    assert [s.value for s in statuses] == [_BAD_TIMEOUT]
    assert sub.last_sequence_number == 7
    assert sub.last_publish_at is not None

    keep_alive = ua.PublishResult()
    await sub.publish_callback(keep_alive)
    assert batches == [[3, 1, 2]]


@pytest.mark.parametrize("raw", [0.0, -1.5, 1e300, math.inf, -math.inf, math.nan])
def test_plain_float_fast_path_agrees_with_the_general_path(raw: float) -> None:
    plain = Converter.of(OpcUaPointConfig(id="p", node_id="ns=2;s=P"))
    # The same conversion through the general path: a range that admits everything.
    general = Converter(1.0, 0.0, -math.inf, math.inf, True)
    fast: Any = plain(raw)
    slow: Any = general(raw)
    assert fast[1:] == slow[1:]
    assert fast[0] == slow[0] or (math.isnan(fast[0]) and math.isnan(slow[0]))
    expected = Quality.GOOD if math.isfinite(raw) else Quality.BAD
    assert fast[1] is expected
    assert fast[2] is (Reason.NONE if math.isfinite(raw) else Reason.OUT_OF_RANGE)
